# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""ART's attacks run end to end against both defences; voting and defence construction by name."""

import numpy as np
import pytest
import torch

from art_purify.evaluation import as_art_classifier, build_defence, majority_vote
from tests.helpers import tiny_classifier, tiny_unet


def _models():
    return tiny_unet(), tiny_classifier()


def _classifier(kind, gradient="surrogate", nb_eot=2):
    unet, model = _models()
    defence = build_defence(kind, unet, None, model, gradient=gradient, nb_eot=nb_eot, seed=0, defence_grid=50)
    return (
        as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cpu", preprocessing_defences=[defence]),
        defence,
    )


def _data(n=4):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=gen).numpy(), np.arange(n) % 10


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_pgd_apgd_and_autoattack_run_against_the_defence(kind):
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, ProjectedGradientDescent

    classifier, defence = _classifier(kind)
    x, y = _data()
    eps = 0.05
    attacks = [
        ProjectedGradientDescent(classifier, eps=eps, eps_step=0.02, max_iter=2, verbose=False),
        AutoProjectedGradientDescent(
            classifier, eps=eps, eps_step=0.02, max_iter=2, nb_random_init=1, batch_size=4, verbose=False
        ),
    ]
    moved = []
    for attack in attacks:
        x_adv = attack.generate(x, y=y)
        assert x_adv.shape == x.shape and np.isfinite(x_adv).all()
        assert classifier.predict(x_adv).shape == (4, 10)  # one row per input despite nb_eot = 2
        moved.append(np.abs(x_adv - x).max())
    assert moved[0] > 0  # PGD's last iterate: the gradient through the defence moved the inputs
    auto = AutoAttack(
        classifier,
        eps=eps,
        eps_step=0.02,
        batch_size=4,
        attacks=[
            AutoProjectedGradientDescent(
                classifier, eps=eps, eps_step=0.02, max_iter=2, nb_random_init=1, batch_size=4, verbose=False
            )
        ],
    )
    x_adv = auto.generate(x, y=y)
    assert x_adv.shape == x.shape and np.isfinite(x_adv).all()
    assert all(p.grad is None for p in defence.unet.parameters())


def test_eot_gradient_is_the_mean_of_single_sample_gradients():
    classifier, defence = _classifier("uniform", gradient="exact", nb_eot=3)
    x, y = _data(2)
    onehot = np.eye(10, dtype=np.float32)[y]
    defence.reset_generator()
    eot = classifier.loss_gradient(x, onehot)
    # Without EOT, on the inputs replicated the way the defence expands them: the same batch, the same noise draws.
    defence.set_params(nb_eot=1)  # also restarts the seeded stream
    single = classifier.loss_gradient(np.repeat(x, 3, axis=0), np.repeat(onehot, 3, axis=0))
    # Both are gradients of one mean over 6 rows: the EOT gradient of an input is the sum over its 3 copies,
    # i.e. the EOT average of the per-sample gradients of the 2-row mean loss.
    expected = single.reshape(2, 3, *x.shape[1:]).sum(1)
    assert np.allclose(eot, expected, atol=1e-6, rtol=1e-4)


def test_majority_vote():
    class Fixed:
        nb_classes = 3

        def __init__(self):
            self.calls = 0

        def predict(self, x, batch_size=1):
            self.calls += 1
            out = np.zeros((len(x), 3))
            out[:, [0, 1, 1, 2][self.calls - 1]] = 1  # votes: 0, 1, 1, 2
            return out

    pred, margin, counts = majority_vote(Fixed(), np.zeros((2, 1)), n_votes=4)
    assert pred.tolist() == [1, 1] and counts[0].tolist() == [1, 2, 1]
    assert margin.tolist() == [0.25, 0.25]
    with pytest.raises(ValueError, match="n_votes"):
        majority_vote(Fixed(), np.zeros((2, 1)), n_votes=0)


def test_build_defence_errors():
    unet, model = _models()
    assert build_defence("none") is None
    with pytest.raises(ValueError, match="unknown defence 'diffpure'"):
        build_defence("diffpure", unet)
    with pytest.raises(ValueError, match="needs the classifier"):
        build_defence("heterogeneous", unet)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_art_attacks_run_against_the_defences_on_the_shipped_models(kind):
    """ART's PGD, APGD (CE and DLR) and AutoAttack, unchanged, against each defence built on the shipped Fashion-MNIST
    classifier and UNet (short grids and few iterations to stay fast; the full figures are in docs/results.md)."""
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, ProjectedGradientDescent

    from art_purify.datasets import load_fashion_mnist
    from art_purify.zoo import load_classifier, load_diffusion

    model = load_classifier("fashion-mnist")
    unet, scheduler = load_diffusion("fashion-mnist")
    defence = build_defence(kind, unet, scheduler, model, gradient="surrogate", nb_eot=2, seed=0, defence_grid=50)
    classifier = as_art_classifier(
        model, input_shape=(1, 28, 28), nb_classes=10, device="cpu", preprocessing_defences=[defence]
    )
    x, y = load_fashion_mnist(n=3)
    eps = 0.1

    def apgd(loss_type):
        return AutoProjectedGradientDescent(
            classifier,
            eps=eps,
            eps_step=0.025,
            max_iter=2,
            nb_random_init=1,
            batch_size=3,
            loss_type=loss_type,
            verbose=False,
        )

    attacks = [
        ProjectedGradientDescent(classifier, eps=eps, eps_step=0.025, max_iter=2, verbose=False),
        apgd("cross_entropy"),
        apgd("difference_logits_ratio"),
        AutoAttack(
            classifier,
            eps=eps,
            eps_step=0.025,
            batch_size=3,
            attacks=[apgd("cross_entropy"), apgd("difference_logits_ratio")],
        ),
    ]
    for attack in attacks:
        x_adv = attack.generate(x, y=y)
        assert x_adv.shape == x.shape and np.isfinite(x_adv).all()
        assert classifier.predict(x_adv).shape == (3, 10)  # one row per input despite nb_eot = 2
    # PGD really moved the inputs: the gradient through the defence is not zero
    assert np.abs(attacks[0].generate(x, y=y) - x).max() > eps / 2
    assert all(p.grad is None for p in unet.parameters()) and all(p.grad is None for p in model.parameters())
    assert not unet.training and not model.training
