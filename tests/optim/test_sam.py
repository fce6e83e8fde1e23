# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""SAM, ImbSAM and SSE-SAM against a plain reference implementation of their definitions (written here)."""

import copy

import numpy as np
import pytest
import torch
from torch.func import functional_call

from art_purify.optim import SAM, SSESAM, ImbSAM, make_closure

COUNTS = [50, 40, 30, 8, 5, 3]  # with eta = 10: tail classes 3, 4, 5
ETA = 10


def _mlp():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 6)).double()


def _batch(labels=(0, 1, 2, 3, 4, 5, 0, 1, 3, 0)):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(len(labels), 5, generator=gen, dtype=torch.float64), torch.tensor(labels)


def _reference_gradient(model, x, y, groups):
    """G = sum_k grad L_k(w + rho_k g_k / (||g_k|| + 1e-12)), L_k = sum of group k's CE losses / batch size."""
    names = [n for n, _ in model.named_parameters()]
    w = [p.detach().clone() for p in model.parameters()]

    def group_loss(weights, mask):
        logits = functional_call(model, dict(zip(names, weights)), (x,))
        losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return (losses * mask).sum() / len(x)

    total = [torch.zeros_like(t) for t in w]
    for mask, rho in groups:
        if mask.sum() == 0:
            continue
        params = [t.clone().requires_grad_(True) for t in w]
        g = torch.autograd.grad(group_loss(params, mask), params)
        norm = torch.sqrt(sum((t**2).sum() for t in g))
        point = [(t + rho * gi / (norm + 1e-12)).requires_grad_(True) for t, gi in zip(w, g)]
        gp = torch.autograd.grad(group_loss(point, mask), point)
        total = [a + b for a, b in zip(total, gp)]
    return total


def _reference_step(model, x, y, groups, **sgd):
    """The reference update: the base SGD applied to the reference gradient, on a copy of the model."""
    ref = copy.deepcopy(model)
    grads = _reference_gradient(ref, x, y, groups)
    opt = torch.optim.SGD(ref.parameters(), **sgd)
    for p, g in zip(ref.parameters(), grads):
        p.grad = g
    opt.step()
    return ref


def _tail_mask(y):
    return torch.isin(y, torch.tensor([3, 4, 5])).double()


def _assert_same(a, b, tol=1e-12):
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=0, atol=tol), (p - q).abs().max()


SGD = {"lr": 0.5}


def _make(kind, model, **kw):
    if kind == "sam":
        return SAM(model.parameters(), torch.optim.SGD, rho=kw.get("rho", 0.3), **SGD)
    if kind == "imbsam":
        return ImbSAM(model.parameters(), torch.optim.SGD, class_counts=COUNTS, eta=ETA, rho=kw.get("rho", 0.3), **SGD)
    return SSESAM(
        model.parameters(),
        torch.optim.SGD,
        class_counts=COUNTS,
        eta=ETA,
        rho_head=kw.get("rho_head", 0.2),
        rho_tail=kw.get("rho_tail", 0.4),
        gamma=kw.get("gamma", 0.5),
        epochs=kw.get("epochs", 4),
        **SGD,
    )


def _step(opt, model, x, y):
    return opt.step(make_closure(model, torch.nn.CrossEntropyLoss(), x, y), targets=y)


@pytest.mark.parametrize("kind", ["sam", "imbsam", "ssesam"])
def test_the_step_equals_the_definition(kind):
    model = _mlp()
    x, y = _batch()
    tail = _tail_mask(y)
    groups = {
        "sam": [(torch.ones(len(y), dtype=torch.float64), 0.3)],
        "imbsam": [(1 - tail, 0.0), (tail, 0.3)],
        "ssesam": [(1 - tail, 0.2), (tail, 0.4)],
    }[kind]
    expected = _reference_step(model, x, y, groups, **SGD)
    opt = _make(kind, model)
    loss = _step(opt, model, x, y)
    _assert_same(model, expected)
    full = torch.nn.functional.cross_entropy(_mlp()(x), y)  # loss returned = batch loss at w
    assert float(loss) == pytest.approx(float(full.detach()), rel=1e-12)


def test_ssesam_phase_switch_at_gamma_times_epochs():
    model = _mlp()
    opt = _make("ssesam", model, gamma=0.7, epochs=10)
    assert opt.switch_epoch == 7
    phases = []
    for _ in range(10):
        phases.append(opt.phase)
        opt.epoch_end()
    assert phases == [1] * 7 + [2] * 3
    # in phase 2 the step is exactly ImbSAM with rho = rho_tail
    model = _mlp()
    opt = _make("ssesam", model, gamma=0.5, epochs=4)
    opt.epoch_end()
    opt.epoch_end()
    assert opt.phase == 2
    x, y = _batch()
    tail = _tail_mask(y)
    expected = _reference_step(model, x, y, [(1 - tail, 0.0), (tail, 0.4)], **SGD)
    _step(opt, model, x, y)
    _assert_same(model, expected)
    assert (
        _make("ssesam", _mlp(), gamma=0.0).phase == 2 and _make("ssesam", _mlp(), gamma=1.0, epochs=3).switch_epoch == 3
    )


def test_passes_per_step_and_forwarded_rows():
    """Phase 1: each group forwarded at w and at its perturbed point (every pass at w first); phase 2: the head once,
    the tail twice."""
    model = _mlp()
    x, y = _batch()
    calls = []
    inner = make_closure(model, torch.nn.CrossEntropyLoss(), x, y)

    def closure(index=None, perturbed=False):
        calls.append((None if index is None else sorted(y[index].tolist()), perturbed))
        return inner(index, perturbed)

    opt = _make("ssesam", model, gamma=0.5, epochs=2)
    opt.step(closure, targets=y)
    head, tail = sorted(v for v in y.tolist() if v < 3), sorted(v for v in y.tolist() if v >= 3)
    assert calls == [(head, False), (tail, False), (head, True), (tail, True)]
    calls.clear()
    opt.epoch_end()
    opt.step(closure, targets=y)
    assert calls == [(head, False), (tail, False), (tail, True)]


@pytest.mark.parametrize("kind", ["sam", "imbsam", "ssesam"])
def test_rho_zero_reproduces_the_base_optimiser_exactly(kind):
    model, base_model = _mlp(), _mlp()
    opt = _make(kind, model, rho=0.0, rho_head=0.0, rho_tail=0.0)
    base = torch.optim.SGD(base_model.parameters(), **SGD)
    for _ in range(3):
        x, y = _batch()
        _step(opt, model, x, y)
        base.zero_grad()
        torch.nn.functional.cross_entropy(base_model(x), y).backward()
        base.step()
    for p, q in zip(model.parameters(), base_model.parameters()):
        assert torch.equal(p, q)


def test_momentum_and_instance_base_optimiser():
    """A base optimiser instance with momentum and weight decay; several steps follow the reference."""
    model = _mlp()
    ref = copy.deepcopy(model)
    sgd = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}
    opt = ImbSAM(None, torch.optim.SGD(model.parameters(), **sgd), class_counts=COUNTS, eta=ETA, rho=0.3)
    ref_opt = torch.optim.SGD(ref.parameters(), **sgd)
    for _ in range(3):
        x, y = _batch()
        tail = _tail_mask(y)
        grads = _reference_gradient(ref, x, y, [(1 - tail, 0.0), (tail, 0.3)])
        for p, g in zip(ref.parameters(), grads):
            p.grad = g
        ref_opt.step()
        _step(opt, model, x, y)
    _assert_same(model, ref)
    assert all("momentum_buffer" in opt.state[p] for p in model.parameters())


def test_a_batch_without_tail_samples():
    model = _mlp()
    x, y = _batch(labels=(0, 1, 2, 0, 1, 2))  # no sample of classes 3, 4, 5
    ones = torch.ones(len(y), dtype=torch.float64)
    expected = _reference_step(model, x, y, [(ones, 0.2), (0 * ones, 0.4)], **SGD)
    _step(_make("ssesam", model), model, x, y)
    _assert_same(model, expected)
    model = _mlp()
    x, y = _batch(labels=(3, 4, 5, 3))  # only tail samples: ImbSAM is then SAM on them
    expected = _reference_step(model, x, y, [(torch.ones(4, dtype=torch.float64), 0.3)], **SGD)
    _step(_make("imbsam", model), model, x, y)
    _assert_same(model, expected)


@pytest.mark.parametrize("kind", ["sam", "imbsam", "ssesam"])
def test_state_dict_round_trip(kind):
    model = _mlp()
    opt = _make(kind, model)
    sgd_momentum = {"lr": 0.1, "momentum": 0.9}
    opt = type(opt)(model.parameters(), torch.optim.SGD, **_kwargs(kind), **sgd_momentum)
    x, y = _batch()
    for _ in range(2):
        _step(opt, model, x, y)
    if kind == "ssesam":
        opt.epoch_end()
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    _step(opt, model, x, y)
    model2 = _mlp()
    model2.load_state_dict(saved_model)
    opt2 = type(opt)(model2.parameters(), torch.optim.SGD, **_kwargs(kind), **sgd_momentum)
    opt2.load_state_dict(saved_opt)
    assert opt2.base_optimizer.state is opt2.state and opt2.base_optimizer.param_groups is opt2.param_groups
    _step(opt2, model2, x, y)
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
    if kind == "ssesam":
        assert opt2.epoch == 1


def _kwargs(kind):
    if kind == "sam":
        return {"rho": 0.3}
    if kind == "imbsam":
        return {"class_counts": COUNTS, "eta": ETA, "rho": 0.3}
    return {"class_counts": COUNTS, "eta": ETA, "rho_head": 0.2, "rho_tail": 0.4, "gamma": 0.5, "epochs": 4}


def test_batchnorm_running_statistics_are_untouched_by_perturbed_passes():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 6)).double()
    x, y = _batch()
    bn = model[1]
    probe = copy.deepcopy(model)
    probe(x)  # one unperturbed pass over the whole batch: what SAM's running statistics should see
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    _step(opt, model, x, y)
    assert torch.allclose(bn.running_mean, probe[1].running_mean) and int(bn.num_batches_tracked) == 1
    assert bn.momentum == 0.1


def test_plain_closure_and_two_pass_style_for_sam():
    model, twin = _mlp(), _mlp()
    x, y = _batch()
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    SAM(model.parameters(), torch.optim.SGD, rho=0.3, **SGD).step(closure)
    opt = SAM(twin.parameters(), torch.optim.SGD, rho=0.3, **SGD)
    loss_fn(twin(x), y).backward()
    opt.first_step(zero_grad=True)
    loss_fn(twin(x), y).backward()
    opt.second_step(zero_grad=True)
    _assert_same(model, twin)
    _assert_same(model, _reference_step(_mlp(), x, y, [(torch.ones(len(y), dtype=torch.float64), 0.3)], **SGD))


def test_bad_input_is_rejected():
    params = list(_mlp().parameters())
    with pytest.raises(ValueError, match="rho must be a non-negative"):
        SAM(params, torch.optim.SGD, rho=-0.1, lr=0.1)
    with pytest.raises(ValueError, match="rho_tail must be a non-negative"):
        SSESAM(params, torch.optim.SGD, class_counts=COUNTS, rho_tail=-1.0, lr=0.1)
    for gamma in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\]"):
            SSESAM(params, torch.optim.SGD, class_counts=COUNTS, gamma=gamma, lr=0.1)
    with pytest.raises(ValueError, match="exactly one of class_counts"):
        ImbSAM(params, torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match="must not be negative"):
        ImbSAM(params, torch.optim.SGD, class_counts=[5, -1, 3], lr=0.1)
    with pytest.raises(ValueError, match="base_optimizer must be"):
        SAM(params, "sgd", lr=0.1)
    model = _mlp()
    opt = ImbSAM(model.parameters(), torch.optim.SGD, class_counts=[10, 5, 1], eta=3, lr=0.1)
    x, y = _batch()  # labels up to 5 but only 3 class counts
    with pytest.raises(ValueError, match="class_counts has 3 classes"):
        _step(opt, model, x, y)
    with pytest.raises(ValueError, match="needs targets"):
        opt.step(make_closure(model, torch.nn.CrossEntropyLoss(), x, y))
    with pytest.raises(ValueError, match="returned no loss"):
        SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1).step(lambda: None)
    with pytest.raises(ValueError, match="needs a closure"):
        SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1).step()
    with pytest.raises(ValueError, match="must accept"):
        ImbSAM(model.parameters(), torch.optim.SGD, class_counts=COUNTS, eta=ETA, lr=0.1).step(lambda: None, targets=y)
    assert np.isfinite(float(_step(_make("sam", model), model, x, y)))


def test_a_failing_closure_leaves_the_weights_at_w_and_deepcopy_keeps_the_optimiser():
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _batch()
    inner = make_closure(model, torch.nn.CrossEntropyLoss(), x, y)

    def closure(index=None, perturbed=False):
        if perturbed:
            raise RuntimeError("out of memory")
        return inner(index, perturbed)

    opt = _make("ssesam", model)
    with pytest.raises(RuntimeError, match="out of memory"):
        opt.step(closure, targets=y)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not any("sam_w" in opt.state[p] for p in model.parameters())
    with pytest.raises(RuntimeError, match="use step"):
        opt.first_step()
    twin = copy.deepcopy({"model": model, "opt": opt})
    assert twin["opt"].base_optimizer.param_groups is twin["opt"].param_groups
    _step(twin["opt"], twin["model"], x, y)  # the copy steps on the copied model
    assert not torch.equal(next(twin["model"].parameters()), next(model.parameters()))


def _bn_mlp():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.Tanh(), torch.nn.Linear(7, 6)
        ).double()


@pytest.mark.parametrize("kind", ["imbsam", "ssesam"])
def test_batch_mode_equals_the_definition_with_batchnorm(kind):
    """With BatchNorm the default closure forwards the whole batch: every group's loss is normalised with (and
    differentiated through) the whole batch's statistics, as in the definition."""
    model = _bn_mlp()
    x, y = _batch()
    tail = _tail_mask(y)
    groups = [(1 - tail, 0.0), (tail, 0.3)] if kind == "imbsam" else [(1 - tail, 0.2), (tail, 0.4)]
    expected = _reference_step(model, x, y, groups, **SGD)
    probe = copy.deepcopy(model)
    probe(x)  # the running statistics after one whole-batch pass
    opt = _make(kind, model)
    closure = make_closure(model, torch.nn.CrossEntropyLoss(), x, y)
    assert closure.batchnorm == "batch"
    opt.step(closure, targets=y)
    _assert_same(model, expected)
    bn = model[1]
    assert torch.allclose(bn.running_mean, probe[1].running_mean) and int(bn.num_batches_tracked) == 1
    # the fast group mode normalises each group on its own: a different update
    group_model = _bn_mlp()
    _make(kind, group_model).step(
        make_closure(group_model, torch.nn.CrossEntropyLoss(), x, y, batchnorm="group"), targets=y
    )
    assert not torch.allclose(next(group_model.parameters()), next(model.parameters()))
    with pytest.raises(ValueError, match="batchnorm must be one of"):
        make_closure(model, torch.nn.CrossEntropyLoss(), x, y, batchnorm="ghost")


@pytest.mark.parametrize("kind, forwards", [("imbsam", 2), ("ssesam", 3)])
def test_batch_mode_shares_one_forward_for_the_passes_at_w(kind, forwards):
    """In "batch" mode the passes at w (head and tail) share one whole-batch forward: ImbSAM forwards the batch twice
    (at w, at the tail's perturbed point), SSE-SAM phase 1 three times; a second step on the same closure (weights
    moved) forwards afresh and still equals the definition."""
    model = _bn_mlp()
    x, y = _batch()
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    tail = _tail_mask(y)
    groups = [(1 - tail, 0.0), (tail, 0.3)] if kind == "imbsam" else [(1 - tail, 0.2), (tail, 0.4)]
    opt = _make(kind, model)
    closure = make_closure(model, torch.nn.CrossEntropyLoss(), x, y)
    opt.step(closure, targets=y)
    assert seen == [len(x)] * forwards
    expected = _reference_step(model, x, y, groups, **SGD)
    seen.clear()  # the reference's copy of the model carries the hook too
    opt.step(closure, targets=y)
    assert seen == [len(x)] * forwards
    _assert_same(model, expected)


@pytest.mark.parametrize("batchnorm", ["batch", "group"])
@pytest.mark.parametrize("kind", ["sam", "sam-rho-0", "imbsam", "ssesam"])
def test_a_closure_reused_for_several_steps_updates_the_running_statistics_once_per_step(kind, batchnorm):
    """Each step moves the statistics as its passes at w do (one whole-batch pass, or one pass per group in "group"
    mode), however many steps the closure has served."""
    model = _bn_mlp()
    x, y = _batch()
    bn = model[1]
    opt = _make("sam", model, rho=0.0) if kind == "sam-rho-0" else _make(kind, model)
    closure = make_closure(model, torch.nn.CrossEntropyLoss(), x, y, batchnorm=batchnorm)
    groups = [x] if kind.startswith("sam") or batchnorm == "batch" else [x[index] for index in opt.split(y)]
    for step in range(1, 4):
        probe = copy.deepcopy(model)  # the step's passes at w, on a copy
        for rows in groups:
            probe(rows)
        opt.step(closure, targets=y)
        assert int(bn.num_batches_tracked) == len(groups) * step
        assert torch.allclose(bn.running_mean, probe[1].running_mean, rtol=0, atol=1e-12)
        assert torch.allclose(bn.running_var, probe[1].running_var, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batchnorm", ["batch", "group"])
def test_the_two_pass_style_with_a_reused_closure_updates_the_running_statistics_once_per_step(batchnorm):
    model = _bn_mlp()
    x, y = _batch()
    opt = _make("sam", model)
    closure = make_closure(model, torch.nn.CrossEntropyLoss(), x, y, batchnorm=batchnorm)
    for step in range(1, 4):
        probe = copy.deepcopy(model)
        probe(x)
        closure()
        opt.first_step(zero_grad=True)
        closure(perturbed=True)
        opt.second_step(zero_grad=True)
        assert int(model[1].num_batches_tracked) == step
        assert torch.allclose(model[1].running_mean, probe[1].running_mean, rtol=0, atol=1e-12)
