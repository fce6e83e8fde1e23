"""The same guarantees on CUDA as on the CPU: gradients, ART integration, seeding, attacks, optimisers, trainer.

These tests need a CUDA device and are skipped without one (CI has none); the sessions that are lent a GPU run them
with ``python -m pytest tests/test_cuda.py`` (see docs/benchmarks.md for the last run).
"""
import numpy as np
import pytest
import torch

from art_purify.evaluation import as_art_classifier, build_defence
from art_purify.models import SmallResNet
from tests.conftest import TINY_UNET

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _models(dtype=torch.float64):
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(**TINY_UNET).to(dtype).eval()
        model = SmallResNet(widths=(4, 4, 8, 8)).to(dtype).eval()
    return unet.to(CUDA), model.to(CUDA)


def _defence(kind, dtype=torch.float64, fixed_mask=False, **kw):
    unet, model = _models(dtype)
    kw.setdefault("seed", 0)
    kw.setdefault("defence_grid", 50)
    defence = build_defence(kind, unet, None, model, device_type="gpu", **kw)
    if fixed_mask:
        mask = torch.zeros(1, 1, 8, 8, dtype=torch.float64, device=CUDA)
        mask[:, :, 2:6, 2:6] = 1.0
        defence._prepare = lambda x: mask.expand(len(x), -1, -1, -1).to(x.dtype)
    return defence, model


def _input(n=2, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (0.2 + 0.6 * torch.rand(n, 1, 8, 8, generator=gen)).to(dtype).to(CUDA)


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_exact_gradient_matches_finite_differences_on_cuda(kind):
    defence, _ = _defence(kind, gradient="exact", fixed_mask=(kind == "heterogeneous"))
    x = _input()
    gen = torch.Generator(device=CUDA).manual_seed(5)
    weights = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=CUDA)

    def loss(z):
        defence.reset_generator()
        return (defence.forward(z)[0] * weights).sum()

    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(xg), xg)
    assert grad.device.type == "cuda" and grad.abs().sum() > 0
    h = 1e-6
    for _ in range(3):
        v = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=CUDA)
        with torch.no_grad():
            fd = (loss(x + h * v) - loss(x - h * v)) / (2 * h)
        analytic = (grad * v).sum()
        assert abs(fd - analytic) / abs(fd).clamp_min(1e-12) < 1e-4, (fd.item(), analytic.item())


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_checkpointing_does_not_change_the_gradient_on_cuda(kind):
    grads = []
    for ckpt in (True, False):
        defence, _ = _defence(kind, gradient="exact", checkpointing=ckpt, fixed_mask=(kind == "heterogeneous"))
        xg = _input().requires_grad_(True)
        defence.forward(xg)[0].pow(2).sum().backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("gradient", ["exact", "surrogate", "bpda"])
@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_art_loss_gradient_on_cuda_is_the_autograd_gradient(kind, gradient):
    defence, model = _defence(kind, dtype=torch.float32, gradient=gradient)
    classifier = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cuda",
                                   preprocessing_defences=[defence])
    assert classifier.device.type == "cuda"
    x = _input(3, torch.float32).cpu().numpy()
    labels = [1, 4, 7]
    defence.reset_generator()
    art_grad = classifier.loss_gradient(x, np.eye(10, dtype=np.float32)[labels])
    assert isinstance(art_grad, np.ndarray) and art_grad.shape == x.shape
    defence.reset_generator()
    xg = torch.from_numpy(x).to(CUDA).requires_grad_(True)
    out, _ = defence.forward(xg)
    if gradient == "bpda":  # identity backward: the undefended gradient at the purified point
        point = out.detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(point), torch.tensor(labels, device=CUDA))
        (direct,) = torch.autograd.grad(loss, point)
    else:
        loss = torch.nn.functional.cross_entropy(model(out), torch.tensor(labels, device=CUDA))
        (direct,) = torch.autograd.grad(loss, xg)
    assert np.allclose(art_grad, direct.cpu().numpy(), atol=1e-6, rtol=1e-4)
    assert np.abs(art_grad).sum() > 0
    assert all(p.grad is None for p in defence.unet.parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_seeded_purification_on_cuda_is_reproducible_and_float64_is_kept(kind):
    defence, _ = _defence(kind, gradient="exact")
    x = _input(3)
    defence.reset_generator()
    first, _ = defence.forward(x)
    second, _ = defence.forward(x)
    defence.reset_generator()
    replay, _ = defence.forward(x)
    assert first.device.type == "cuda" and first.dtype == torch.float64 and first.shape == x.shape
    assert torch.equal(first, replay)  # the same seeded stream
    assert not torch.equal(first, second)  # fresh noise on the next call
    assert first.min() >= 0 and first.max() <= 1
    # ART's numpy path: the input goes to the defence's device, the output comes back as numpy
    purified, _ = defence(x.cpu().numpy())
    assert isinstance(purified, np.ndarray) and purified.shape == (3, 1, 8, 8)


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_art_pgd_and_apgd_with_eot_run_on_cuda(kind):
    from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent

    defence, model = _defence(kind, dtype=torch.float32, gradient="surrogate", nb_eot=2)
    classifier = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=10, device="cuda",
                                   preprocessing_defences=[defence])
    x, y = _input(4, torch.float32).cpu().numpy(), np.arange(4)
    eps = 0.05
    pgd = ProjectedGradientDescent(classifier, eps=eps, eps_step=0.02, max_iter=3, verbose=False)
    apgd = AutoProjectedGradientDescent(classifier, eps=eps, eps_step=0.02, max_iter=3, nb_random_init=1,
                                        batch_size=4, verbose=False)
    for attack in (pgd, apgd):
        x_adv = attack.generate(x, y=y)
        assert x_adv.shape == x.shape and np.isfinite(x_adv).all()
        assert np.abs(x_adv - x).max() <= eps + 1e-6
        assert classifier.predict(x_adv).shape == (4, 10)
    assert np.abs(pgd.generate(x, y=y) - x).max() > eps / 2  # the gradient through the defence moved the inputs
    assert all(p.grad is None for p in defence.unet.parameters()) and not defence.unet.training


@pytest.mark.parametrize("kind", ["sam", "imbsam", "ssesam"])
def test_sam_family_step_on_cuda_equals_the_cpu_step(kind):
    from art_purify.optim import SAM, SSESAM, ImbSAM, make_closure

    def build(device):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 6)).double()
        model.to(device)
        counts, sgd = [50, 40, 30, 8, 5, 3], {"lr": 0.5, "momentum": 0.9}
        opt = {"sam": lambda: SAM(model.parameters(), torch.optim.SGD, rho=0.3, **sgd),
               "imbsam": lambda: ImbSAM(model.parameters(), torch.optim.SGD, class_counts=counts, eta=10, rho=0.3,
                                        **sgd),
               "ssesam": lambda: SSESAM(model.parameters(), torch.optim.SGD, class_counts=counts, eta=10,
                                        rho_head=0.2, rho_tail=0.4, gamma=0.5, epochs=2, **sgd)}[kind]()
        return model, opt

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 3, 0])
    results = []
    for device in ("cpu", "cuda"):
        model, opt = build(device)
        xd, yd = x.to(device), y.to(device)
        for _ in range(2):  # SSE-SAM: phase 1, then phase 2 after the switch at epoch 1
            opt.step(make_closure(model, torch.nn.CrossEntropyLoss(), xd, yd), targets=yd)
            if hasattr(opt, "epoch_end"):
                opt.epoch_end()
        results.append([p.detach().cpu() for p in model.parameters()])
    for p, q in zip(*results):
        assert torch.allclose(p, q, rtol=0, atol=1e-10), (p - q).abs().max()


def test_sharpness_aware_trainer_fits_on_cuda():
    from art_purify.defences.trainer import SharpnessAwareTrainerPyTorch
    from art_purify.optim import SSESAM

    counts = np.array([60, 40, 20, 10, 6])
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), counts)
    x = rng.random((len(y), 1, 8, 8), dtype=np.float32) * 0.3
    for c in range(5):
        x[y == c, 0, c, :] = 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(256, 5))
    classifier = as_art_classifier(model, input_shape=(1, 8, 8), nb_classes=5, device="cuda")
    opt = SSESAM(classifier.model.parameters(), torch.optim.SGD, class_counts=counts, eta=15, rho_head=0.05,
                 rho_tail=0.1, gamma=0.5, epochs=3, lr=0.05, momentum=0.9)
    history = SharpnessAwareTrainerPyTorch(classifier, opt, seed=0, verbose=False).fit(
        x, y, nb_epochs=3, batch_size=16, validation_data=(x, y))
    assert next(classifier.model.parameters()).device.type == "cuda"
    assert [h["phase"] for h in history] == [1, 1, 2]
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["val_accuracy"] > 0.5
