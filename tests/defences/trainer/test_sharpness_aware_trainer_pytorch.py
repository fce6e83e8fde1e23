# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The sharpness-aware ART trainer and `art-purify train-long-tailed`."""

import json

import numpy as np
import pytest
import torch

from art_purify.cli import main
from art_purify.defences.trainer import SharpnessAwareTrainerPyTorch, shot_groups
from art_purify.evaluation import as_art_classifier
from art_purify.optim import SAM, SSESAM, ImbSAM

COUNTS = np.array([60, 40, 20, 10, 6])


def _data(seed=0):
    """A learnable long-tailed toy problem: class c has a bright pixel block at row c."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(5), COUNTS)
    x = rng.random((len(y), 1, 8, 8), dtype=np.float32) * 0.3
    for c in range(5):
        x[y == c, 0, c, :] = 1.0
    return x, y


def _classifier(device="cpu"):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(256, 5),
        )
    return as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=5, device=device)


def _optimizer(kind, model, epochs=3):
    params, sgd = model.parameters(), {"lr": 0.05, "momentum": 0.9}
    if kind == "sgd":
        return torch.optim.SGD(params, **sgd)
    if kind == "sam":
        return SAM(params, torch.optim.SGD, rho=0.05, **sgd)
    if kind == "imbsam":
        return ImbSAM(params, torch.optim.SGD, class_counts=COUNTS, eta=15, rho=0.1, **sgd)
    return SSESAM(
        params,
        torch.optim.SGD,
        class_counts=COUNTS,
        eta=15,
        rho_head=0.05,
        rho_tail=0.1,
        gamma=0.5,
        epochs=epochs,
        **sgd,
    )


@pytest.mark.parametrize("kind", ["sgd", "sam", "imbsam", "ssesam"])
def test_fit_learns_with_every_optimiser(kind):
    classifier = _classifier()
    x, y = _data()
    trainer = SharpnessAwareTrainerPyTorch(classifier, _optimizer(kind, classifier.model), seed=0, verbose=False)
    history = trainer.fit(x, y, nb_epochs=3, batch_size=16, validation_data=_data(1))
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > 0.5 and set(history[-1]) >= {"val_many_accuracy", "val_few_accuracy"}
    assert [h["lr"] for h in history] == pytest.approx([0.05, 0.05 * 0.75, 0.05 * 0.25])  # cosine per epoch
    if kind == "ssesam":
        assert [h["phase"] for h in history] == [1, 1, 2]  # switch at ceil(0.5 * 3) = 2
    assert not classifier.model.training and not any(p.requires_grad for p in classifier.model.parameters())


def test_resume_equals_an_uninterrupted_run(tmp_path):
    x, y = _data()

    def run(out, stop_after=None, resume=False, classifier=None):
        classifier = classifier or _classifier()
        trainer = SharpnessAwareTrainerPyTorch(
            classifier, _optimizer("ssesam", classifier.model), seed=0, checkpoint_dir=out, verbose=False
        )
        trainer.fit(x, y, nb_epochs=3, batch_size=16, stop_after=stop_after, resume=resume)
        return classifier, trainer

    full, _ = run(tmp_path / "full")
    part, trainer = run(tmp_path / "part", stop_after=2)
    assert len(trainer.history) == 2
    resumed, trainer = run(tmp_path / "part", resume=True)
    assert [h["epoch"] for h in trainer.history] == [1, 2, 3] and trainer.optimizer.epoch == 3
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_after_a_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    x, y = _data()

    def run(out, stop_after=None, resume=False):
        classifier = _classifier()
        trainer = SharpnessAwareTrainerPyTorch(
            classifier, _optimizer("ssesam", classifier.model), seed=0, checkpoint_dir=out, verbose=False
        )
        trainer.fit(x, y, nb_epochs=3, batch_size=16, stop_after=stop_after, resume=resume)
        return classifier, trainer

    full, _ = run(tmp_path / "full")
    run(tmp_path / "part", stop_after=2)  # checkpoints after epochs 1 and 2
    newest = tmp_path / "part" / "checkpoint.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a write cut short
    with pytest.warns(RuntimeWarning, match="checkpoint.pt cannot be read.*checkpoint.prev.pt"):
        resumed, trainer = run(tmp_path / "part", resume=True)
    assert [h["epoch"] for h in trainer.history] == [1, 2, 3] and trainer.optimizer.epoch == 3  # epoch 2 redone
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_shot_groups_and_group_accuracy():
    groups = shot_groups([500, 300, 100, 50, 20, 5])  # CIFAR-LT convention: > 100 many, < 20 few
    assert groups == {"many": [0, 1], "medium": [2, 3, 4], "few": [5]}
    groups = shot_groups([6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60])  # Fashion-MNIST-LT: 1200 / 240
    assert groups == {"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8, 9]}
    classifier = _classifier()
    trainer = SharpnessAwareTrainerPyTorch(
        classifier, _optimizer("sgd", classifier.model), class_counts=COUNTS, many_shot=30, few_shot=8, verbose=False
    )
    x, y = _data()
    acc = trainer.group_accuracy(x, y)
    prediction = classifier.predict(x).argmax(1)
    assert shot_groups(COUNTS, 30, 8) == {"many": [0, 1], "medium": [2, 3], "few": [4]}
    few = y == 4
    assert acc["accuracy"] == pytest.approx((prediction == y).mean())
    assert acc["few_accuracy"] == pytest.approx((prediction[few] == y[few]).mean())


def test_trainer_rejects_bad_input(tmp_path):
    classifier = _classifier()
    x, y = _data()
    with pytest.raises(ValueError, match="class_counts has 3 entries"):
        SharpnessAwareTrainerPyTorch(classifier, _optimizer("sgd", classifier.model), class_counts=[1, 2, 3])
    with pytest.raises(ValueError, match="none of the classifier model's parameters"):
        SharpnessAwareTrainerPyTorch(classifier, torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1))
    trainer = SharpnessAwareTrainerPyTorch(
        classifier, _optimizer("ssesam", classifier.model, epochs=10), checkpoint_dir=tmp_path, verbose=False
    )
    with pytest.raises(ValueError, match="built for epochs=10 but fit runs 3"):
        trainer.fit(x, y, nb_epochs=3)
    with pytest.raises(ValueError, match="labels of x must lie in"):
        trainer.fit(x, y + 5, nb_epochs=10)
    with pytest.raises(ValueError, match="expects"):
        trainer.fit(x[:, :, :4], y, nb_epochs=10)
    with pytest.raises(ValueError, match="finite"):
        trainer.fit(np.full_like(x, np.nan), y, nb_epochs=10)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trainer.fit(x, y, nb_epochs=10, resume=True)
    with pytest.raises(ValueError, match="batch_size=1000 is larger"):
        trainer.fit(x, y, nb_epochs=10, batch_size=1000)


def test_cli_train_long_tailed(idx_dir, tmp_path, capsys):
    out = tmp_path / "lt"
    argv = [
        "train-long-tailed",
        "--data",
        str(idx_dir),
        "--optimizer",
        "ssesam",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--imbalance",
        "5",
        "--gamma",
        "0.5",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    assert "ssesam: test accuracy" in capsys.readouterr().out
    card = json.loads((out / "model_card.json").read_text())
    assert card["metrics"]["class_counts"][0] == 5 * card["metrics"]["class_counts"][-1]
    assert set(card["metrics"]["test"]) == {"accuracy", "many_accuracy", "medium_accuracy", "few_accuracy"}
    assert [h["phase"] for h in card["history"]] == [1, 2] and card["command"].startswith("art-purify")
    assert (out / "classifier.safetensors").is_file()
    assert main(argv) == 2  # a second run must not overwrite the first
    assert "already exists" in capsys.readouterr().err
    assert main(argv[:-3] + ["--gamma", "1.5", "--out", str(tmp_path / "g"), "--quiet"]) == 2
    assert "gamma must lie in [0, 1]" in capsys.readouterr().err
