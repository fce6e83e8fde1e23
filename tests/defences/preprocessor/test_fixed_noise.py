# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The fixed-noise (deterministic white-box, DW-box) mode of the random defences: an example's noise depends on the
seed and its key alone (not on the call, the batch, the position or the input's pixels), different examples get
different noise, and ART's loss gradient is the exact gradient of that fixed function."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import (
    AToPPurificationPyTorch,
    DiffusionPurificationPyTorch,
    HeterogeneousDiffusionPurificationPyTorch,
    RandomMaskingPyTorch,
)
from art_purify.models import InpaintingGenerator, as_art_classifier
from art_purify.utils import KeyedStreams
from tests.helpers import directional_check, fixed_mask, image_batch, tiny_classifier, tiny_unet


class Elementwise(torch.nn.Module):
    """A noise model without cross-row arithmetic (so without batch-size-dependent kernels): the defence's own part
    of the computation can then be checked bit for bit across batches."""

    def forward(self, x, t):
        return torch.tanh(3.0 * x) * (1.0 + t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1))) / 1000.0)


def _uniform(unet, **kw):
    return DiffusionPurificationPyTorch(unet, t_star=100, sampler="ddpm", defence_grid=50, device_type="cpu", **kw)


def _hetero(unet, **kw):
    defence = HeterogeneousDiffusionPurificationPyTorch(
        unet, tiny_classifier(torch.float64), t_high=200, t_low=100, jump=10, defence_grid=50, device_type="cpu", **kw
    )
    defence._prepare = lambda x: fixed_mask(1).to(device=x.device, dtype=x.dtype)  # no classifier rounding
    return defence


def _masking(unet, **kw):
    return RandomMaskingPyTorch.preset("rt2", dtype=None, device_type="cpu", **kw)


FACTORIES = {"uniform": _uniform, "heterogeneous": _hetero, "random-masking": _masking}


def test_keyed_streams_draw_per_row_whatever_the_other_rows():
    both = KeyedStreams(7, [3, 9]).draw(torch.randn, (2, 4, 5), dtype=torch.float64)
    alone = KeyedStreams(7, [9]).draw(torch.randn, (1, 4, 5), dtype=torch.float64)
    swapped = KeyedStreams(7, [9, 3]).draw(torch.randn, (2, 4, 5), dtype=torch.float64)
    assert torch.equal(both[1], alone[0]) and torch.equal(both[[1, 0]], swapped)
    assert not torch.equal(both[0], both[1])  # another key, other noise
    assert not torch.equal(both, KeyedStreams(8, [3, 9]).draw(torch.randn, (2, 4, 5), dtype=torch.float64))
    along = KeyedStreams(7, [3, 9]).draw(torch.randn, (4, 2, 5), dtype=torch.float64, row_dim=1)
    assert torch.equal(
        along[:, 1], KeyedStreams(7, [9]).draw(torch.randn, (4, 1, 5), dtype=torch.float64, row_dim=1)[:, 0]
    )
    with pytest.raises(ValueError, match="3 rows but there are 2 keys"):
        KeyedStreams(7, [3, 9]).draw(torch.randn, (3, 4))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_same_example_same_output_bit_for_bit_in_any_call_batch_and_position(name):
    defence = FACTORIES[name](Elementwise(), noise="fixed", seed=3)
    x = image_batch(5, torch.float64)
    defence.set_noise_keys(x, radius=0.1)
    perm = [4, 2, 0, 3, 1]
    with torch.no_grad():
        first = defence.forward(x)[0]
        assert torch.equal(defence.forward(x)[0], first)  # another call
        assert torch.equal(defence.forward(x[perm])[0], first[perm])  # other positions
        assert torch.equal(defence.forward(x[3:4])[0][0], first[3])  # alone
        assert torch.equal(defence.forward(x[[1, 3]])[0], first[[1, 3]])  # another batch
        moved = (x[2:3] + 0.04).clamp(0, 1)  # an attack's iterate keeps its example's noise
        fresh = FACTORIES[name](Elementwise(), noise="fresh", seed=3)
        assert not torch.equal(fresh.forward(x)[0], fresh.forward(x)[0])  # the default mode draws anew
    if name != "random-masking":
        defence.set_params(batch_size=2)  # internal batches of another size
        with torch.no_grad():
            assert torch.equal(defence.forward(x)[0], first)
    other = FACTORIES[name](Elementwise(), noise="fixed", seed=3)
    other.set_noise_keys(x[2:3], radius=0.1, keys=[2])
    with torch.no_grad():
        assert torch.equal(other.forward(moved)[0], defence.forward(moved)[0])  # the key, not the registry, decides
        other.set_noise_keys(x[2:3], radius=0.1, keys=[11])
        assert not torch.equal(other.forward(moved)[0], defence.forward(moved)[0])  # another example, other noise


def test_real_networks_agree_across_batches_to_their_own_rounding():
    """The tiny UNet's and AToP generator's kernels round differently for other batch sizes (last bits); the noise
    is the same, so the outputs agree to float64 rounding."""
    x = image_batch(4, torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = InpaintingGenerator(1, width=4).to(torch.float64)
    atop = AToPPurificationPyTorch(generator, RandomMaskingPyTorch.preset("rt2"), seed=1, noise="fixed")
    for defence in (_uniform(tiny_unet(torch.float64), seed=1, noise="fixed"), atop):
        defence.set_noise_keys(x, radius=0.1)
        with torch.no_grad():
            whole, part = defence.forward(x)[0], defence.forward(x[[2, 0]])[0]
        assert torch.allclose(whole[[2, 0]], part, rtol=0, atol=1e-12)
        assert (whole - x).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["uniform", "heterogeneous", "atop"])
def test_art_loss_gradient_is_the_exact_gradient_of_the_fixed_function(name):
    x = image_batch(2, torch.float64)
    if name == "atop":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            generator = InpaintingGenerator(1, width=4).to(torch.float64)
        defence = AToPPurificationPyTorch(generator, RandomMaskingPyTorch.preset("rt2"), seed=1, noise="fixed")
    else:
        defence = FACTORIES[name](tiny_unet(torch.float64), seed=1, noise="fixed")
    defence.set_noise_keys(x, radius=0.1)
    directional_check(defence, x)  # float64 central finite differences of the fixed function
    model = tiny_classifier(torch.float64)
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[defence])
    y = np.eye(10, dtype=np.float32)[[2, 7]]
    art_grad = classifier.loss_gradient(x.numpy(), y)
    xg = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(defence.forward(xg)[0]), torch.tensor([2, 7]))
    (direct,) = torch.autograd.grad(loss, xg)
    assert np.abs(art_grad).sum() > 0
    np.testing.assert_allclose(art_grad, direct.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(classifier.loss_gradient(x.numpy(), y), art_grad)  # no fresh draw in between


def test_fixed_noise_errors_name_the_problem_and_change_nothing():
    with pytest.raises(ValueError, match="needs an integer seed"):
        _uniform(Elementwise(), noise="fixed")
    with pytest.raises(ValueError, match="nb_eot must be 1"):
        _masking(None, noise="fixed", seed=0, nb_eot=4)
    with pytest.raises(ValueError, match="noise must be one of"):
        _masking(None, noise="sometimes", seed=0)
    defence = _uniform(Elementwise(), seed=0, nb_eot=3)
    with pytest.raises(ValueError, match="nb_eot must be 1"):
        defence.set_params(noise="fixed")
    assert defence.noise == "fresh" and defence.nb_eot == 3
    defence.set_params(noise="fixed", nb_eot=1)  # together: accepted
    x = image_batch(3, torch.float64)
    with pytest.raises(ValueError, match="call set_noise_keys"):
        defence.forward(x)
    for kwargs, match in (
        ({"radius": -1.0}, "radius must be"),
        ({"radius": 0.1, "keys": [0, 1]}, "keys must be 3 non-negative integers"),
        ({"radius": 0.1, "keys": [0, -1, 2]}, "keys must be 3"),
    ):
        with pytest.raises(ValueError, match=match):
            defence.set_noise_keys(x, **kwargs)
        assert defence._noise_anchors is None  # nothing registered
    with pytest.raises(ValueError, match="outside clip_values"):
        defence.set_noise_keys(x + 1.0, radius=0.1)
    defence.set_noise_keys(x, radius=0.05)
    with pytest.raises(ValueError, match="input row 1 is at L_inf distance 0.2 "):
        defence.forward(torch.cat([x[:1], (x[1:2] + 0.2).clamp(0, 1)]))
    pair = torch.cat([x[:1].clamp(0.2, 0.8), x[:1].clamp(0.2, 0.8) + 0.15])  # two examples 0.15 apart
    defence.set_noise_keys(pair, radius=0.1)
    defence.forward(pair[:1] + 0.02)  # near one of them only
    with pytest.raises(ValueError, match=r"input row 0 is within the radius 0.1 of .* different noise keys \(key 0 at"):
        defence.forward(pair[:1] + 0.075)  # within the radius of both: the key would depend on the pixels
    defence.set_noise_keys(pair, radius=0.1, keys=[4, 4])
    defence.forward(pair[:1] + 0.075)  # one key: nothing ambiguous
    with pytest.raises(ValueError, match="do not match the registered examples"):
        defence.forward(image_batch(1, torch.float64, side=16))
    defence.clear_noise_keys()
    with pytest.raises(ValueError, match="call set_noise_keys"):
        defence.forward(x)


def test_key_lookup_in_chunks_finds_the_same_keys_and_the_same_ambiguity(monkeypatch):
    from art_purify.defences.preprocessor import eot

    defence = _uniform(Elementwise(), seed=0, noise="fixed")
    x = image_batch(5, torch.float64)
    defence.set_noise_keys(x, radius=0.05, keys=[7, 3, 9, 1, 4])
    shuffled = x[[4, 0, 3]] + 0.01
    whole = defence.noise_keys_of(shuffled)
    monkeypatch.setattr(eot, "_LOOKUP_BUDGET", 1)  # one anchor per chunk
    np.testing.assert_array_equal(defence.noise_keys_of(shuffled), whole)
    assert whole.tolist() == [4, 7, 1]
    pair = torch.cat([x[:1], x[:1] + 0.06]).clamp(0, 1)  # different keys in different chunks
    defence.set_noise_keys(torch.cat([x[1:], pair]), radius=0.05)
    with pytest.raises(ValueError, match=r"different noise keys \(key 4 at .*, key 5 at"):
        defence.noise_keys_of(pair[:1] + 0.03)
