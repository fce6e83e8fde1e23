# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The AToP trainer: both phases train the purifier and never the classifier, the CE term starts at its epoch,
exact resume, get_classifier, and input checks."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
from art_purify.defences.trainer import AdversarialTrainerAToPPyTorch
from art_purify.models import InpaintingGenerator, PatchDiscriminator, as_art_classifier
from tests.helpers import tiny_classifier


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 8, 8)).astype(np.float32), (np.arange(n) % 10).astype(np.int64)


def _trainer(tmp_path=None, classifier=None, **kw):
    classifier = classifier or as_art_classifier(tiny_classifier(torch.float32), (1, 8, 8), 10, device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator, discriminator = InpaintingGenerator(1, width=4), PatchDiscriminator(1, width=4, nb_layers=2)
    kw.setdefault("batch_size", 4)
    kw.setdefault("ce_start_epoch", 1)
    return AdversarialTrainerAToPPyTorch(
        classifier, generator, discriminator, checkpoint_dir=tmp_path, verbose=False, seed=0, **kw
    )


def _weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_both_phases_train_the_purifier_and_leave_the_classifier_as_it_was(tmp_path):
    trainer = _trainer(tmp_path)
    model = trainer.get_classifier().model
    classifier_before, generator_before = _weights(model), _weights(trainer.generator)
    x, y = _data()
    pre = trainer.pretrain(x, nb_epochs=1, lr=1e-3)
    pretrained = _weights(trainer.generator)
    fine = trainer.fit(x, y, nb_epochs=2)
    assert any(not torch.equal(generator_before[k], pretrained[k]) for k in pretrained)
    assert any(not torch.equal(pretrained[k], v) for k, v in _weights(trainer.generator).items())
    assert all(torch.equal(classifier_before[k], v) for k, v in _weights(model).items())
    assert [r["phase"] for r in trainer.history] == ["pretrain", "finetune", "finetune"]
    assert pre[0]["ce"] == 0 and not pre[0]["ce_on"]
    assert fine[0]["ce"] == 0 and not fine[0]["ce_on"] and fine[1]["ce"] > 0 and fine[1]["ce_on"]  # from epoch 1
    assert not trainer.generator.training and not any(p.requires_grad for p in trainer.generator.parameters())
    assert (tmp_path / "pretrain" / "checkpoint.pt").is_file() and (tmp_path / "finetune" / "checkpoint.pt").is_file()


def test_the_classification_loss_reaches_the_generator_and_lowers_the_classifier_loss():
    x, y = _data()
    without, with_ce = _trainer(ce_weight=0.0, ce_start_epoch=0), _trainer(ce_weight=50.0, ce_start_epoch=0)
    without.fit(x, y, nb_epochs=1)
    with_ce.fit(x, y, nb_epochs=1)
    # the same draws and data order: only the CE term differs, so it must change the update (ART's preprocessing
    # detaches unless told not to, which would make this term a silent no-op)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(_weights(without.generator).values(), _weights(with_ce.generator).values())
    )
    # its gradient is the one of the classifier's loss through the generator
    trainer = _trainer(ce_weight=1.0, ce_start_epoch=0)
    clean = torch.from_numpy(x[:4])
    images, masks = trainer.transform.sample(clean, torch.Generator().manual_seed(0))
    trainer.generator.requires_grad_(True)
    refined = trainer.generator(images.flatten(0, 1) * 2 - 1, masks.flatten(0, 1))[1]
    loss = torch.nn.functional.cross_entropy(trainer._logits((refined + 1) / 2), torch.from_numpy(y[:4]))
    grads = torch.autograd.grad(loss, list(trainer.generator.parameters()))
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_a_fine_tuning_stopped_after_an_epoch_and_resumed_ends_with_the_same_weights(tmp_path):
    x, y = _data()
    full = _trainer(tmp_path / "full")
    full.pretrain(x, nb_epochs=1)
    full.fit(x, y, nb_epochs=3)
    stopped = _trainer(tmp_path / "stopped")
    stopped.pretrain(x, nb_epochs=1)
    stopped.fit(x, y, nb_epochs=3, stop_after=1)
    partial = _weights(stopped.generator)
    resumed = _trainer(tmp_path / "stopped")  # a new process: fresh networks, everything from the checkpoint
    resumed.fit(x, y, nb_epochs=3, resume=True)
    final = _weights(full.generator)
    assert any(not torch.equal(partial[k], final[k]) for k in final)  # the stop really was before the end
    for name, value in _weights(resumed.generator).items():
        assert torch.equal(value, final[name]), name
    for name, value in _weights(resumed.discriminator).items():
        assert torch.equal(value, _weights(full.discriminator)[name]), name
    with pytest.raises(ValueError, match="other settings"):
        _trainer(tmp_path / "stopped", ce_weight=0.5).fit(x, y, nb_epochs=3, resume=True)


def test_pgd_as_the_training_attack_and_get_classifier_with_another_transform(tmp_path):
    from art.attacks.evasion import ProjectedGradientDescent

    classifier = as_art_classifier(tiny_classifier(torch.float32), (1, 8, 8), 10, device="cpu")
    pgd = ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.05, max_iter=2, num_random_init=0, verbose=False)
    trainer = _trainer(tmp_path, classifier=classifier, attack=pgd)
    x, y = _data()
    trainer.fit(x, y, nb_epochs=1)
    defended = trainer.get_classifier(RandomMaskingPyTorch.preset("rt3", block_size=2), seed=0, nb_eot=2)
    (purifier,) = defended.preprocessing_defences
    assert isinstance(purifier, AToPPurificationPyTorch) and purifier.transform.nb_masks == 4
    assert purifier.generator is trainer.generator
    assert defended.predict(x).shape == (16, 10)


def test_bad_settings_and_data_are_refused(tmp_path):
    x, y = _data()
    with pytest.raises(ValueError, match="preprocessing defences"):
        classifier = as_art_classifier(
            tiny_classifier(torch.float32), (1, 8, 8), 10, device="cpu",
            preprocessing_defences=[RandomMaskingPyTorch()],
        )  # fmt: skip
        _trainer(classifier=classifier)
    with pytest.raises(ValueError, match="clip_values"):
        _trainer(transform=RandomMaskingPyTorch(clip_values=(0.0, 255.0)))
    for kwargs, match in (({"eps": 0}, "eps"), ({"ce_weight": -1}, "ce_weight"), ({"betas": (0.5, 1.0)}, "betas")):
        with pytest.raises(ValueError, match=match):
            _trainer(**kwargs)
    trainer = _trainer(tmp_path)
    with pytest.raises(ValueError, match="outside clip_values"):
        trainer.pretrain(x + 2.0)
    with pytest.raises(ValueError, match="shape"):
        trainer.pretrain(x[:, :, :4])
    with pytest.raises(ValueError, match="finite"):
        trainer.pretrain(np.full_like(x, np.nan))
    with pytest.raises(ValueError, match="one integer label"):
        trainer.fit(x, y[:3])
    with pytest.raises(ValueError, match="batch_size"):
        trainer.pretrain(x[:2])
    assert not (tmp_path / "pretrain").exists()  # nothing was written by the refused calls
