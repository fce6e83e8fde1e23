# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The same guarantees on CUDA as on the CPU: gradients, ART integration, seeding, attacks, optimisers, trainer.

These tests need a CUDA device and are skipped without one (CI has none); the sessions that are lent a GPU run them
with ``python -m pytest tests/test_cuda.py`` (see docs/benchmarks.md for the last run).
"""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import StraightThroughPyTorch
from art_purify.evaluation import as_art_classifier, build_defence
from tests import helpers
from tests.helpers import directional_check, tiny_classifier, tiny_unet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _defence(kind, dtype=torch.float64, constant_mask=False, **kw):
    model = tiny_classifier(dtype).to(CUDA)
    kw.setdefault("seed", 0)
    kw.setdefault("defence_grid", 50)
    defence = build_defence(kind, tiny_unet(dtype).to(CUDA), None, model, device_type="gpu", **kw)
    if constant_mask:
        mask = helpers.fixed_mask().to(CUDA)
        defence._prepare = lambda x: mask.to(x.dtype)
    return defence, model


def _cuda_input(n=2, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (0.2 + 0.6 * torch.rand(n, 1, 8, 8, generator=gen)).to(dtype).to(CUDA)


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_exact_gradient_matches_finite_differences_on_cuda(kind):
    defence, _ = _defence(kind, gradient="exact", constant_mask=(kind == "heterogeneous"))
    grad = directional_check(defence, _cuda_input())
    assert grad.device.type == "cuda" and grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_checkpointing_does_not_change_the_gradient_on_cuda(kind):
    grads = []
    for ckpt in (True, False):
        defence, _ = _defence(
            kind, gradient="exact", gradient_checkpointing=ckpt, constant_mask=(kind == "heterogeneous")
        )
        xg = _cuda_input().requires_grad_(True)
        defence.forward(xg)[0].pow(2).sum().backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("gradient", ["exact", "surrogate", "bpda"])
@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_art_loss_gradient_on_cuda_is_the_autograd_gradient(kind, gradient):
    defence, model = _defence(kind, dtype=torch.float32, gradient="exact" if gradient == "bpda" else gradient)
    wrapped = StraightThroughPyTorch(defence) if gradient == "bpda" else defence
    classifier = as_art_classifier(
        model, input_shape=(1, 8, 8), nb_classes=10, device="cuda", preprocessing_defences=[wrapped]
    )
    assert classifier.device.type == "cuda"
    x = _cuda_input(3, torch.float32).cpu().numpy()
    labels = [1, 4, 7]
    defence.reset_generator()
    art_grad = classifier.loss_gradient(x, np.eye(10, dtype=np.float32)[labels])
    assert isinstance(art_grad, np.ndarray) and art_grad.shape == x.shape
    defence.reset_generator()
    xg = torch.from_numpy(x).to(CUDA).requires_grad_(True)
    out, _ = wrapped.forward(xg)
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
    x = _cuda_input(3)
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
    classifier = as_art_classifier(
        model, input_shape=(1, 8, 8), nb_classes=10, device="cuda", preprocessing_defences=[defence]
    )
    x, y = _cuda_input(4, torch.float32).cpu().numpy(), np.arange(4)
    eps = 0.05
    pgd = ProjectedGradientDescent(classifier, eps=eps, eps_step=0.02, max_iter=3, verbose=False)
    apgd = AutoProjectedGradientDescent(
        classifier, eps=eps, eps_step=0.02, max_iter=3, nb_random_init=1, batch_size=4, verbose=False
    )
    for attack in (pgd, apgd):
        x_adv = attack.generate(x, y=y)
        assert x_adv.shape == x.shape and np.isfinite(x_adv).all()
        assert classifier.predict(x_adv).shape == (4, 10)
    assert np.abs(pgd.generate(x, y=y) - x).max() > eps / 2  # the gradient through the defence moved the inputs
    assert all(p.grad is None for p in defence.unet.parameters()) and not defence.unet.training


@pytest.mark.parametrize("kind", ["sam", "imbsam", "ssesam"])
def test_sam_family_step_on_cuda_equals_the_cpu_step(kind):
    from tests.optim.test_sam import _batch, _make, _mlp, _step

    x, y = _batch()
    results = []
    for device in ("cpu", "cuda"):
        model = _mlp().to(device)
        opt = _make(kind, model, epochs=2)  # SSE-SAM: phase 1, then phase 2 after the switch at epoch 1
        for _ in range(2):
            _step(opt, model, x.to(device), y.to(device))
            if hasattr(opt, "epoch_end"):
                opt.epoch_end()
        results.append([p.detach().cpu() for p in model.parameters()])
    for p, q in zip(*results):
        assert torch.allclose(p, q, rtol=0, atol=1e-10), (p - q).abs().max()


def test_sharpness_aware_trainer_fits_on_cuda():
    from art_purify.defences.trainer import SharpnessAwareTrainerPyTorch
    from tests.defences.trainer.test_sharpness_aware_trainer_pytorch import _classifier, _data, _optimizer

    classifier = _classifier("cuda")
    x, y = _data()
    history = SharpnessAwareTrainerPyTorch(
        classifier, _optimizer("ssesam", classifier.model), seed=0, verbose=False
    ).fit(x, y, nb_epochs=3, batch_size=16, validation_data=_data(1))
    assert next(classifier.model.parameters()).device.type == "cuda"
    assert [h["phase"] for h in history] == [1, 1, 2]
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["val_accuracy"] > 0.5


def _search_on_cuda(**kw):
    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch

    kw = {"max_iter": 3, "nb_noise": 2, "step_size": 0.02, "radius": 0.1, "device_type": "gpu", **kw}
    return ReconstructionSearchPyTorch(tiny_unet(torch.float64).to(CUDA), **kw)


def test_reconstruction_search_on_cuda_exact_gradient_determinism_and_the_cpu_output():
    search = _search_on_cuda()
    x = _cuda_input(3)
    directional_check(search, x)  # the unrolled gradient against finite differences, float64, on CUDA
    first, second = search.forward(x)[0], search.forward(x)[0]
    assert torch.equal(first, second) and first.device.type == "cuda" and first.dtype == torch.float64
    alone = search.forward(x[1:2])[0]
    assert torch.allclose(alone, first[1:2], atol=1e-5, rtol=0)
    cpu = _search_on_cuda()
    cpu.denoiser.cpu()
    assert torch.allclose(cpu.forward(x.cpu())[0], first.cpu(), atol=1e-6)  # same fixed draws on both devices
    grads = []
    for ckpt in (True, False):
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_search_on_cuda(gradient_checkpointing=ckpt).forward(xg)[0].sum(), xg)
        grads.append(grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0)


def test_atop_purifier_on_cuda_seeded_exact_gradient_and_art_predict():
    from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
    from art_purify.models import InpaintingGenerator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = InpaintingGenerator(1, width=4).to(CUDA)
    purifier = AToPPurificationPyTorch(generator, RandomMaskingPyTorch.preset("rt3"), seed=0, device_type="gpu")
    x = _cuda_input(2, torch.float32).requires_grad_(True)
    out, _ = purifier.forward(x)
    assert out.device == x.device and out.shape == x.shape
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    purifier.reset_generator()
    assert torch.equal(purifier.forward(x.detach())[0], out.detach())  # seeded draws replay on the device
    model = tiny_classifier(torch.float32).to(CUDA)
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cuda", preprocessing_defences=[purifier])
    assert classifier.predict(x.detach().cpu().numpy()).shape == (2, 10)


@pytest.mark.parametrize(
    "options, tolerance",
    [
        ({"precision": "bfloat16"}, 0.05),
        ({"precision": "float16"}, 0.02),
        ({"precision": "bfloat16", "channels_last": True}, 0.05),
        ({"channels_last": True}, 1e-4),
    ],
)
def test_speed_options_on_cuda_against_float32(options, tolerance):
    x = _cuda_input(3, dtype=torch.float32)
    results = []
    for opts in ({}, options):
        defence, _ = _defence("heterogeneous", dtype=torch.float32, gradient="exact", **opts)
        xg = x.clone().requires_grad_(True)
        out = defence.forward(xg)[0]
        (grad,) = torch.autograd.grad(
            (out * torch.linspace(-1, 1, out.numel(), device=CUDA).reshape(out.shape)).sum(), xg
        )
        results.append((out.detach(), grad))
    (out0, grad0), (out1, grad1) = results
    assert out1.dtype == torch.float32 and torch.isfinite(grad1).all()
    assert (out1 - out0).abs().max() <= tolerance
    assert (grad1 - grad0).norm() <= 10 * tolerance * grad0.norm()


def test_two_gloo_ranks_on_one_cuda_device_give_the_single_process_report(tmp_path):
    """The sharded evaluation on CUDA tensors (both ranks on the one lent GPU, gloo for the outcomes)."""
    import json

    import torch.multiprocessing as mp

    mp.spawn(_cuda_rank, args=(2, str(tmp_path)), nprocs=2)
    _cuda_rank(0, 1, str(tmp_path / "single"))
    split = json.loads((tmp_path / "report.json").read_text())
    alone = json.loads((tmp_path / "single" / "report.json").read_text())
    # CUDA kernels may reorder floating-point sums between processes: the outcomes must agree, the images closely
    assert [e["robust"] for e in split["per_example"]] == [e["robust"] for e in alone["per_example"]]
    assert [e["clean_prediction"] for e in split["per_example"]] == [
        e["clean_prediction"] for e in alone["per_example"]
    ]
    for name, images in alone["x_adv"].items():
        assert np.allclose(split["x_adv"][name], images, atol=1e-4)


def _cuda_rank(rank, world, root):
    import json
    import os

    import torch.distributed as dist

    from art_purify.evaluation import AttackSettings, evaluate, evaluate_distributed
    from tests.evaluation.test_sharding import ATTACKS, KWARGS, _outcomes

    os.makedirs(root, exist_ok=True)
    model = tiny_classifier().to(CUDA)
    defence = build_defence("uniform", tiny_unet().to(CUDA), None, model, seed=0, defence_grid=50, device_type="gpu")

    classifier = as_art_classifier(
        model, input_shape=(1, 8, 8), nb_classes=10, device=CUDA, preprocessing_defences=[defence]
    )
    x = helpers.image_batch(7, dtype=torch.float32, seed=3).numpy()
    y = np.arange(7) % 10
    settings = AttackSettings(eps=0.1, max_iter=2, batch_size=2)
    if world == 1:
        report = evaluate(classifier, x, y, ATTACKS, settings, **KWARGS)
    else:
        dist.init_process_group("gloo", init_method=f"file://{root}/init", rank=rank, world_size=world)
        try:
            report = evaluate_distributed(classifier, x, y, ATTACKS, settings, **KWARGS)
        finally:
            dist.destroy_process_group()
    if report is not None:
        per_example, x_adv = _outcomes(report)
        with open(f"{root}/report.json", "w", encoding="utf-8") as out:
            json.dump({"per_example": per_example, "x_adv": x_adv}, out)
