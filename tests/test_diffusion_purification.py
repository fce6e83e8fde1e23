import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import (
    DiffusionPurificationPyTorch,
    HeterogeneousDiffusionPurificationPyTorch,
    StraightThroughPyTorch,
)
from art_purify.diffusion import DiffusionSchedule
from art_purify.diffusion.purification import heterogeneous_purify, uniform_purify
from art_purify.evaluation import as_art_classifier
from art_purify.models import SmallResNet
from tests.conftest import TINY_UNET


def _tiny_unet(dtype=torch.float64):
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return UNet2DModel(**TINY_UNET).to(dtype).eval()


def _tiny_classifier(dtype=torch.float64):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return SmallResNet(widths=(4, 4, 8, 8)).to(dtype).eval()


def _input(n=2, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (0.2 + 0.6 * torch.rand(n, 1, 8, 8, generator=gen)).to(dtype)


def _uniform(**kw):
    kw.setdefault("defence_grid", 50)  # stride 20: t* = 100 -> 5 UNet calls
    kw.setdefault("seed", 0)
    return DiffusionPurificationPyTorch(_tiny_unet(kw.pop("dtype", torch.float64)), t_star=100, device_type="cpu", **kw)


def _hetero(fixed_mask=None, **kw):
    kw.setdefault("defence_grid", 50)  # stride 20: 200 -> 0 in 10 UNet calls
    kw.setdefault("seed", 0)
    kw.setdefault("jump", 10)
    dtype = kw.pop("dtype", torch.float64)
    defence = HeterogeneousDiffusionPurificationPyTorch(
        _tiny_unet(dtype), _tiny_classifier(dtype), t_high=200, t_low=100, device_type="cpu", **kw
    )
    if fixed_mask is not None:
        defence._prepare = lambda x: fixed_mask.to(x.dtype)
    return defence


def _fixed_mask(n=2):
    mask = torch.zeros(n, 1, 8, 8, dtype=torch.float64)
    mask[:, :, 2:6, 2:6] = 1.0
    return mask


def _directional_check(defence, x, n_dirs=3):
    gen = torch.Generator(device=x.device).manual_seed(5)
    weights = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)

    def loss(z):
        defence.reset_generator()  # the same noise on every evaluation
        return (defence.forward(z)[0] * weights).sum()

    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(xg), xg)
    h = 1e-6
    for _ in range(n_dirs):
        v = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            fd = (loss(x + h * v) - loss(x - h * v)) / (2 * h)
        analytic = (grad * v).sum()
        assert abs(fd - analytic) / abs(fd).clamp_min(1e-12) < 1e-4, (fd.item(), analytic.item())
    return grad


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_uniform_exact_gradient_matches_finite_differences(sampler):
    _directional_check(_uniform(sampler=sampler, gradient="exact"), _input())


def test_heterogeneous_exact_gradient_matches_finite_differences():
    _directional_check(_hetero(_fixed_mask(), gradient="exact"), _input())


@pytest.mark.parametrize("make", [_uniform, lambda **kw: _hetero(_fixed_mask(), **kw)])
def test_checkpointing_does_not_change_the_gradient(make):
    x = _input()
    grads = []
    for ckpt in (True, False):
        defence = make(gradient="exact", gradient_checkpointing=ckpt)
        xg = x.clone().requires_grad_(True)
        defence.forward(xg)[0].pow(2).sum().backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0)
    assert grads[0].abs().sum() > 0


def _art_setup(defence_factory, gradient, dtype=torch.float32):
    model = _tiny_classifier(dtype)
    defence = defence_factory(gradient=gradient, dtype=dtype)
    classifier = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cpu",
                                   preprocessing_defences=[defence])
    return model, defence, classifier


@pytest.mark.parametrize("gradient", ["exact", "surrogate"])
@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_art_loss_gradient_is_the_autograd_gradient_through_the_defence(kind, gradient):
    factory = _uniform if kind == "uniform" else _hetero
    model, defence, classifier = _art_setup(factory, gradient)
    x = _input(3, torch.float32).numpy()
    y = np.eye(10, dtype=np.float32)[[1, 4, 7]]
    defence.reset_generator()
    art_grad = classifier.loss_gradient(x, y)
    defence.reset_generator()
    xg = torch.from_numpy(x).requires_grad_(True)
    out, _ = defence.forward(xg)
    loss = torch.nn.functional.cross_entropy(model(out), torch.tensor([1, 4, 7]))
    (direct,) = torch.autograd.grad(loss, xg)
    assert np.allclose(art_grad, direct.numpy(), atol=1e-6, rtol=1e-4)
    assert np.abs(art_grad).sum() > 0
    assert all(p.grad is None for p in defence.unet.parameters())


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_bpda_gradient_is_the_undefended_gradient_at_the_purified_point(kind):
    factory = _uniform if kind == "uniform" else _hetero
    model, defence, _ = _art_setup(factory, "exact")
    classifier = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cpu",
                                   preprocessing_defences=[StraightThroughPyTorch(defence)])
    x = _input(3, torch.float32).numpy()
    y = np.eye(10, dtype=np.float32)[[1, 4, 7]]
    defence.reset_generator()
    art_grad = classifier.loss_gradient(x, y)
    defence.reset_generator()
    purified = defence(x)[0]
    undefended = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cpu")
    assert np.allclose(art_grad, undefended.loss_gradient(purified, y), atol=1e-7)
    assert not np.allclose(purified, x)


def test_surrogate_keeps_the_defence_output_value():
    x = _input(2, torch.float32)
    full = _uniform(gradient="exact", dtype=torch.float32)(x.numpy())[0]
    sur_defence = _uniform(gradient="surrogate", dtype=torch.float32)
    out, _ = sur_defence.forward(x.clone().requires_grad_(True))
    assert np.allclose(out.detach().numpy(), full, atol=1e-6)


def test_seeded_stream_is_reproducible_and_fresh_per_call():
    x = _input(2, torch.float32).numpy()
    a, b = _uniform(dtype=torch.float32, seed=3), _uniform(dtype=torch.float32, seed=3)
    first, again = a(x)[0], b(x)[0]
    assert np.array_equal(first, again)
    assert not np.allclose(a(x)[0], first)  # the next call draws fresh noise
    state = torch.get_rng_state()
    _uniform(dtype=torch.float32, seed=None)(x)[0]
    assert torch.equal(state, torch.get_rng_state())


def _region_stds(grid, n=400):
    """Final noise std of the salient (left) and other (right) halves under a noise model that removes nothing."""
    schedule = DiffusionSchedule()
    zero_model = lambda x, t: torch.zeros_like(x)  # noqa: E731
    xd = torch.zeros(n, 1, 8, 8, dtype=torch.float64)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    mask[..., :, :4] = 1.0
    out = heterogeneous_purify(zero_model, xd, mask, schedule, 200, 100, grid, 10, torch.Generator().manual_seed(0))
    return out[..., :, :4].std().item(), out[..., :, 4:].std().item()


@pytest.mark.parametrize("grid", [200, 50, 20])
def test_both_noise_levels_reach_the_output(grid):
    """The salient region must carry the HIGH level and the rest a clearly lower one (the official code once shipped
    a defence that silently used one level). Holds on the defence grid and on any attack grid whose stage 1 has more
    than one step."""
    salient, other = _region_stds(grid)
    assert other < 0.7 * salient
    assert other > 0.0


def test_attack_grid_10_has_a_single_stage1_step_where_both_regions_share_the_level():
    """Documented property of the paper's two-call surrogate (200 -> 100 -> 0): its one stage-1 step re-anchors the
    non-salient pixels at t = 200, the level of the salient ones, so the two regions are noised alike there."""
    salient, other = _region_stds(10, n=2000)
    assert other == pytest.approx(salient, rel=0.05)


def test_noise_level_map_and_mask_are_exposed():
    defence = _hetero(dtype=torch.float32)
    x = _input(2, torch.float32)
    mask = defence.saliency_mask(x)
    levels = defence.noise_level_map(x)
    assert mask.shape == (2, 1, 8, 8) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert 0 < mask.mean() < 1
    assert set(levels.unique().tolist()) == {100.0, 200.0}


def test_eot_expands_gradient_calls_only():
    defence = _uniform(dtype=torch.float32, nb_eot=4)
    x = _input(3, torch.float32)
    y = torch.eye(10)[[0, 1, 2]]
    out, y_out = defence.forward(x.clone().requires_grad_(True), y)
    assert out.shape[0] == 12 and y_out.shape[0] == 12 and torch.equal(y_out[:4], y[[0, 0, 0, 0]])
    with torch.no_grad():
        out, y_out = defence.forward(x, y)
    assert out.shape[0] == 3
    out, y_none = defence.forward(x.clone().requires_grad_(True), None)
    assert out.shape[0] == 3 and y_none is None


def test_float64_channels_last_and_batching():
    defence = _uniform(dtype=torch.float32, channels_first=False, batch_size=2)
    x = _input(5, torch.float64).permute(0, 2, 3, 1)
    out, _ = defence.forward(x)
    assert out.shape == x.shape and out.dtype == torch.float64


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.full((1, 1, 8, 8), float("nan")), "NaN or inf"),
        (torch.full((1, 1, 8, 8), 1.5), "outside clip_values"),
        (torch.rand(1, 3, 8, 8), "3 channels"),
        (torch.rand(1, 1, 7, 7), "multiples of 2"),
        (torch.rand(0, 1, 8, 8), "empty batch"),
        (torch.rand(1, 8, 8), "4 dimensions"),
        (torch.zeros(1, 1, 8, 8, dtype=torch.long), "floating-point"),
    ],
)
def test_bad_input_is_rejected(x, message):
    with pytest.raises(ValueError, match=message):
        _uniform(dtype=torch.float32).forward(x)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="must not exceed t_high"):
        HeterogeneousDiffusionPurificationPyTorch(
            _tiny_unet(torch.float32), _tiny_classifier(torch.float32), t_high=100, t_low=200)
    with pytest.raises(ValueError, match="gradient must be one of"):
        _uniform(gradient="adjoint")
    with pytest.raises(ValueError, match="gradient must be one of"):  # BPDA is StraightThroughPyTorch now
        _uniform(gradient="bpda")
    with pytest.raises(ValueError, match="not on a grid"):
        _uniform(defence_grid=3)
    with pytest.raises(ValueError, match="sampler"):
        _uniform(sampler="euler")
    defence = _uniform(dtype=torch.float32)
    with pytest.raises(ValueError, match="nb_eot must be a positive integer"):
        defence.set_params(nb_eot=0)
    defence.set_params(nb_eot=2)
    assert defence.nb_eot == 2
    with pytest.raises(ValueError, match="stage_names is required"):
        HeterogeneousDiffusionPurificationPyTorch(_tiny_unet(), torch.nn.Conv2d(1, 1, 3))
