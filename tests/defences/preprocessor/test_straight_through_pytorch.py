# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""StraightThroughPyTorch: BPDA's identity gradient through any ART PyTorch preprocessor."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import StraightThroughPyTorch
from art_purify.models import as_art_classifier
from tests.helpers import hetero_defence, image_batch, tiny_classifier, uniform_defence


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_bpda_gradient_is_the_undefended_gradient_at_the_purified_point(kind):
    factory = uniform_defence if kind == "uniform" else hetero_defence
    model = tiny_classifier(torch.float32)
    defence = factory(gradient="exact", dtype=torch.float32)
    classifier = as_art_classifier(
        model,
        input_shape=(1, 8, 8),
        nb_classes=10,
        device="cpu",
        preprocessing_defences=[StraightThroughPyTorch(defence)],
    )
    x = image_batch(3, torch.float32).numpy()
    y = np.eye(10, dtype=np.float32)[[1, 4, 7]]
    defence.reset_generator()
    art_grad = classifier.loss_gradient(x, y)
    defence.reset_generator()
    purified = defence(x)[0]
    undefended = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cpu")
    assert np.allclose(art_grad, undefended.loss_gradient(purified, y), atol=1e-7)
    assert not np.allclose(purified, x)


def test_bpda_eot_expands_loss_gradient_calls_into_independent_purifications():
    defence = uniform_defence(dtype=torch.float32)
    bpda = StraightThroughPyTorch(defence, nb_eot=3)
    x = image_batch(2, torch.float32)
    y = torch.eye(10)[[0, 1]]
    out, y_out = bpda.forward(x.clone().requires_grad_(True), y)
    assert out.shape[0] == 6 and torch.equal(y_out, y[[0, 0, 0, 1, 1, 1]])
    assert not torch.allclose(out[0], out[1])  # three purifications, not one copied
    xg = x.clone().requires_grad_(True)
    out, _ = bpda.forward(xg, y)
    (grad,) = torch.autograd.grad((out * 2.0).sum(), xg)
    assert torch.equal(grad, torch.full_like(x, 6.0))  # identity backward, summed over the 3 copies
    with torch.no_grad():
        assert bpda.forward(x, y)[0].shape[0] == 2  # predict-like calls keep one row per input
    assert bpda.apply_predict and not bpda.apply_fit  # taken from the wrapped defence


def test_bpda_rejects_bad_arguments():
    with pytest.raises(TypeError, match="PreprocessorPyTorch"):
        StraightThroughPyTorch(torch.nn.Identity())
    with pytest.raises(ValueError, match="nb_eot must be a positive integer"):
        StraightThroughPyTorch(uniform_defence(dtype=torch.float32), nb_eot=0)
