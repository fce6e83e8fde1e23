# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The activation saliency of the heterogeneous defence: computed in eval mode, the classifier's modes restored."""

import copy

import pytest
import torch

from art_purify.defences.preprocessor import ActivationSaliency
from tests.helpers import image_batch, tiny_classifier


def _training_classifier():
    """The tiny classifier (BatchNorm in every stage) in train mode, one stage in eval mode (mixed flags)."""
    model = tiny_classifier(torch.float32).train()
    model.stage3.eval()
    return model


def _state(model):
    return [m.training for m in model.modules()], {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    modes, tensors = _state(model)
    assert modes == before[0], "a submodule's training flag changed"
    assert any(k.endswith("num_batches_tracked") for k in tensors)
    for key, value in before[1].items():  # running_mean, running_var, num_batches_tracked and the weights
        assert torch.equal(tensors[key], value), key


def test_the_saliency_pass_leaves_a_training_classifier_as_it_was_even_when_it_fails():
    model = _training_classifier()
    before = _state(model)
    saliency = ActivationSaliency(model, threshold=0.5)
    x = image_batch(4, torch.float32, side=28)  # 28x28: no stage is 1x1 (a constant map normalises rounding noise)
    saliency_map, mask = saliency.saliency_map(x), saliency.mask(x)
    _assert_unchanged(model, before)
    # the map and the mask are those of the classifier in eval mode, whatever mode it is in
    reference = ActivationSaliency(copy.deepcopy(model).eval(), threshold=0.5)
    assert torch.equal(saliency_map, reference.saliency_map(x)) and torch.equal(mask, reference.mask(x))
    assert 0 < mask.mean() < 1
    # so an image's map does not depend on the batch it comes in
    assert torch.allclose(saliency.saliency_map(x[:1]), saliency_map[:1], atol=1e-6)
    # a pass that fails puts the modes back too, and removes its hooks
    with pytest.raises(RuntimeError):
        saliency.mask(torch.rand(2, 3, 28, 28))  # three channels into a one-channel classifier
    _assert_unchanged(model, before)
    assert not any(m._forward_hooks for m in model.modules())
