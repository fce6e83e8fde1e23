# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The deterministic reconstruction search (PurSAMERE): exact unrolled gradients, determinism, the ablations, ART."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
from art_purify.diffusion.reconstruction import expected_reconstruction_error, project
from art_purify.diffusion.sampling import to_model_space
from art_purify.models import as_art_classifier
from tests.helpers import directional_check, image_batch, tiny_classifier, tiny_unet


def search(dtype=torch.float64, **kw):
    kw.setdefault("max_iter", 3)
    kw.setdefault("nb_noise", 2)
    kw.setdefault("step_size", 0.02)
    return ReconstructionSearchPyTorch(tiny_unet(dtype), device_type="cpu", **kw)


@pytest.mark.parametrize("rho, norm", [(0.05, "inf"), (0.0, "2")])
def test_unrolled_gradient_matches_finite_differences(rho, norm):
    radius = 0.1 if norm == "inf" else 0.5
    grad = directional_check(search(rho=rho, norm=norm, radius=radius), image_batch(2))
    assert not torch.allclose(grad, torch.ones_like(grad))  # not the identity: the attacker sees the search


def test_checkpointing_does_not_change_the_gradient():
    grads = []
    for ckpt in (True, False):
        xg = image_batch(2).requires_grad_(True)
        out, _ = search(gradient_checkpointing=ckpt).forward(xg)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), xg)
        grads.append(grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0) and grads[0].abs().sum() > 0


def test_art_loss_gradient_is_the_autograd_gradient_through_the_search():
    model = tiny_classifier(torch.float32)
    defence = search(torch.float32)
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[defence])
    x = image_batch(3, torch.float32).numpy()
    art_grad = classifier.loss_gradient(x, np.eye(10, dtype=np.float32)[[1, 4, 7]])
    xg = torch.from_numpy(x).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(defence.forward(xg)[0]), torch.tensor([1, 4, 7]))
    (direct,) = torch.autograd.grad(loss, xg)
    assert np.allclose(art_grad, direct.numpy(), atol=1e-6, rtol=1e-4) and np.abs(art_grad).sum() > 0
    assert all(p.grad is None for p in defence.denoiser.parameters())
    bpda = search(torch.float32, gradient="bpda")
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[bpda])
    undefended = as_art_classifier(model, (1, 8, 8), 10, device="cpu")
    y = np.eye(10, dtype=np.float32)[[1, 4, 7]]
    assert np.allclose(classifier.loss_gradient(x, y), undefended.loss_gradient(bpda(x)[0], y), atol=1e-7)


def test_deterministic_and_independent_of_batch_and_position():
    defence = search(torch.float32)
    x = image_batch(5, torch.float32, seed=3)
    state = torch.get_rng_state()
    first, second = defence.forward(x)[0], defence.forward(x)[0]
    assert torch.equal(first, second)  # bit for bit on one device
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    alone = defence.forward(x[2:3])[0]
    reordered = defence.forward(x.flip(0))[0].flip(0)
    other_batch = defence.forward(torch.cat([image_batch(3, torch.float32, seed=9), x[2:3]]))[0][-1:]
    for out in (alone, reordered[2:3], other_batch):
        assert (out - first[2:3]).abs().max() <= 1e-5
    small_batches = search(torch.float32, batch_size=2).forward(x)[0]
    assert (small_batches - first).abs().max() <= 1e-5


def test_rho_zero_is_plain_ere_descent_and_zero_steps_or_radius_return_the_input():
    defence = search(rho=0.0, radius=0.1)
    x = image_batch(2)
    out, _ = defence.forward(x)
    noises = defence.noise_draws(x.shape[1:], x.device, x.dtype)
    z = x.clone()
    for _ in range(defence.max_iter):  # the definition, written here independently of the package's step
        zr = z.detach().requires_grad_(True)
        ere = expected_reconstruction_error(defence.denoiser, to_model_space(zr), noises, defence.effective_sigma)
        (g,) = torch.autograd.grad(ere.sum(), zr)
        rms = g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) / g[0].numel() ** 0.5
        z = project(z - 0.02 * g / rms, x, 0.1, "inf", (0.0, 1.0))
    assert torch.allclose(out, z, atol=1e-12)
    assert (out - x).abs().max() <= 0.1 + 1e-12 and not torch.allclose(out, x)
    assert defence.ere(out).sum() < defence.ere(x).sum()  # the search lowers the ERE
    assert torch.equal(search(max_iter=0).forward(x)[0], x)
    assert torch.equal(search(radius=0.0).forward(x)[0], x)
    assert not torch.allclose(search(rho=0.1, radius=0.1).forward(x)[0], out)  # SAM steps differ from plain ones


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.full((1, 1, 8, 8), float("nan")), "NaN or inf"),
        (torch.full((1, 1, 8, 8), 1.5), "outside clip_values"),
        (torch.rand(1, 3, 8, 8), "3 channels"),
        (torch.rand(1, 1, 7, 7), "multiples of 2"),
        (torch.rand(0, 1, 8, 8), "empty batch"),
    ],
)
def test_bad_input_is_rejected(x, message):
    with pytest.raises(ValueError, match=message):
        search(torch.float32).forward(x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sigma": 0.0}, "sigma must be positive"),
        ({"radius": -0.1}, "radius must be non-negative"),
        ({"nb_noise": 0}, "nb_noise must be a positive integer"),
        ({"norm": "1"}, "norm must be one of"),
        ({"gradient": "surrogate"}, "gradient must be one of"),
        ({"max_iter": -1}, "max_iter must be a non-negative integer"),
        ({"step_size": 0.0}, "step_size must be positive"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        search(**kwargs)


def test_a_custom_denoiser_and_exactly_one_denoiser():
    class Shrink(torch.nn.Module):
        def forward(self, x_noisy, sigma):
            return x_noisy / (1.0 + sigma**2)  # the Bayes denoiser of a standard normal prior

    defence = ReconstructionSearchPyTorch(denoiser=Shrink(), sigma=0.5, max_iter=2, nb_noise=2, device_type="cpu")
    assert defence.effective_sigma == 0.5
    out, _ = defence.forward(image_batch(2))
    assert out.shape == (2, 1, 8, 8) and out.dtype == torch.float32  # a parameter-free module: float32
    with pytest.raises(ValueError, match="exactly one of unet"):
        ReconstructionSearchPyTorch(tiny_unet(), denoiser=Shrink())
    with pytest.raises(ValueError, match="exactly one of unet"):
        ReconstructionSearchPyTorch()


def test_trajectory_runs_from_the_input_to_the_output():
    defence = search(max_iter=3, radius=0.1)
    x = image_batch(3)
    path = defence.trajectory(x)
    assert path["ere"].shape == (4, 3) and path["distance"].shape == (4, 3)
    out = defence.forward(x)[0]
    assert np.allclose(path["ere"][0], defence.ere(x).detach().numpy(), rtol=1e-10)
    assert np.allclose(path["ere"][-1], defence.ere(out).detach().numpy(), rtol=1e-10)
    assert np.all(path["distance"][0] == 0) and np.all(path["distance"] <= 0.1 + 1e-12)
    assert np.allclose(path["distance"][-1], (out - x).abs().flatten(1).amax(1).numpy())
    assert np.array_equal(path["output"], out.numpy())  # the same search as forward
    assert path["ere"][-1].sum() < path["ere"][0].sum()
    by_batch = search(max_iter=3, radius=0.1, batch_size=1).trajectory(x)  # internal batching changes nothing
    assert np.allclose(by_batch["ere"], path["ere"], rtol=1e-10)


def test_ere_takes_the_defences_layout_checks_its_input_and_is_differentiable():
    x = image_batch(2)
    first = search().ere(x)
    last = search(channels_first=False).ere(x.permute(0, 2, 3, 1))
    assert torch.allclose(first, last, rtol=1e-12) and first.shape == (2,)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(search().ere(xg).sum(), xg)
    assert grad.abs().sum() > 0
    with pytest.raises(ValueError, match="outside clip_values"):
        search().ere(x + 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        search().trajectory(x * float("nan"))


def _gradient(defence, x):
    xg = x.clone().requires_grad_(True)
    out, _ = defence.forward(xg)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), xg)
    return out.detach(), grad


def test_truncated_gradient_spans_bpda_to_exact_with_the_same_output():
    x = image_batch(2)
    out_exact, exact = _gradient(search(max_iter=3), x)
    out_bpda, bpda = _gradient(search(max_iter=3, gradient="bpda"), x)
    outs, grads = {}, {}
    for k in (0, 1, 3, 5):
        outs[k], grads[k] = _gradient(search(max_iter=3, gradient="truncated", unrolled_steps=k), x)
        assert torch.allclose(outs[k], out_exact, atol=1e-12, rtol=0)  # the same search, another gradient
    assert torch.allclose(grads[3], exact, atol=1e-10) and torch.allclose(grads[5], exact, atol=1e-10)
    assert torch.allclose(grads[0], bpda, atol=1e-12)
    assert not torch.allclose(grads[1], exact, atol=1e-6) and not torch.allclose(grads[1], bpda, atol=1e-6)
    cosine = torch.nn.functional.cosine_similarity(grads[1].flatten(), exact.flatten(), dim=0)
    assert cosine > 0.5  # an approximation of the exact gradient, closer than BPDA's
    assert cosine > torch.nn.functional.cosine_similarity(bpda.flatten(), exact.flatten(), dim=0)
    with pytest.raises(ValueError, match="unrolled_steps must be a non-negative integer"):
        search(gradient="truncated", unrolled_steps=-1)
