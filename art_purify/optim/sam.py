# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
Sharpness-aware optimisers: SAM, ImbSAM and the stage-wise saddle-escaping SSE-SAM.

All three wrap a base optimiser and share one grouped step. The batch is split into groups (SAM: the whole batch;
ImbSAM and SSE-SAM: the head-class samples and the tail-class samples); each group ``k`` has a radius ``rho_k`` and
contributes the gradient of its loss at its own perturbed point::

    L_k(w)  = sum of the losses of group k's samples / (whole batch size)
    e_k     = rho_k * g_k / (||g_k|| + 1e-12),   g_k = grad L_k(w)   (global L2 norm over all parameters)
    G       = sum_k grad L_k(w + e_k)                                    (grad L_k(w) itself when rho_k = 0)

and the base optimiser steps with ``G``. SAM: one group, ``rho``. ImbSAM: head ``rho = 0``, tail ``rho``.
SSE-SAM: head ``rho_head``, tail ``rho_tail`` until epoch ``ceil(gamma * epochs)``, then head ``0`` (ImbSAM).

Cost: each group is passed once at ``w`` and, when its ``rho > 0``, once at ``w + e_k`` (the passes at ``w`` come
first). With ``make_closure(..., batchnorm="group")`` a pass forwards only the group's samples: a first-phase SSE-SAM
step then costs about two SGD steps and, once ``rho_head = 0``, about ``1 + tail share`` (the official code spends 4
forward and 4 backward passes per step in both phases). That is exact for models without BatchNorm. With BatchNorm,
group-only passes normalise each group with its own statistics, which measurably hurts long-tailed training (docs/optim.md), so the
default ``batchnorm="auto"`` forwards the whole batch for BatchNorm models (exact; the passes at ``w`` share one
forward, so ImbSAM costs 2 forward + 3 backward passes and SSE-SAM phase 1 3 + 4, against the official 4 + 4).
When every group's ``rho`` is 0 the step is one pass over the whole batch and equals the base optimiser's step.

The closure: ``closure(index=None, perturbed=False)`` computes the sum of the losses of the batch rows ``index``
(``None``: all) divided by the whole batch size, calls ``backward()`` and returns the loss. The optimiser zeroes
the gradients itself before each call. :func:`make_closure` builds one from a model, a loss and a batch, and keeps
BatchNorm running statistics untouched during perturbed passes, the usual SAM practice: they move once per step
(once per group in ``"group"`` mode), also when the same closure serves several steps (:meth:`SAM.step` tells a
closure that has a ``new_step()`` method that a step starts). SAM also accepts a plain ``closure()`` that forwards
the whole batch.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type, Union, cast

import torch

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

Closure = Callable[..., torch.Tensor]
BaseOptimizer = Union[Type[torch.optim.Optimizer], torch.optim.Optimizer]


def _check_non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    return float(value)


def _accepts_arguments(closure: Closure) -> bool:
    try:
        parameters = inspect.signature(closure).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


class SAM(torch.optim.Optimizer):
    """
    Sharpness-aware minimisation (Foret et al., ICLR 2021) around a base optimiser.

    ``SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)`` or
    ``SAM(None, torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05)``. The base optimiser's parameter groups are
    shared, so learning-rate schedulers work on either object, and ``state_dict`` holds the base optimiser's state
    (momentum buffers) too.

    Use :meth:`step` with a closure, or the two-pass style: ``loss.backward(); opt.first_step(zero_grad=True);
    loss_fn(model(x), y).backward(); opt.second_step(zero_grad=True)``. In the two-pass style both forwards are
    yours, so with BatchNorm both move the running statistics; a :func:`make_closure` closure keeps the perturbed one
    out: ``closure(); opt.first_step(zero_grad=True); closure(perturbed=True); opt.second_step(zero_grad=True)``.

    | Paper link: https://arxiv.org/abs/2010.01412
    """

    def __init__(
        self, params: Optional[Iterable], base_optimizer: BaseOptimizer, rho: float = 0.05, **kwargs: Any
    ) -> None:
        rho = _check_non_negative("rho", rho)
        if isinstance(base_optimizer, torch.optim.Optimizer):
            if kwargs:
                raise ValueError(
                    f"base optimiser options {sorted(kwargs)} given with an optimiser instance; set them "
                    "on the instance instead."
                )
            base = base_optimizer
            if params is not None:
                given = {id(p) for p in params}
                owned = {id(p) for g in base.param_groups for p in g["params"]}
                if given != owned:
                    raise ValueError("params differ from the base optimiser's parameters; pass params=None.")
        elif isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer):
            if params is None:
                raise ValueError("params is required when base_optimizer is a class.")
            base = base_optimizer(params, **kwargs)
        else:
            raise ValueError(
                f"base_optimizer must be a torch.optim.Optimizer class or instance, got " f"{base_optimizer!r}."
            )
        super().__init__(base.param_groups, dict(base.defaults, **self._group_defaults(rho)))
        self.base_optimizer = base
        self.param_groups = base.param_groups
        for group in self.param_groups:
            for key, value in self._group_defaults(rho).items():
                group.setdefault(key, value)
        self.state = base.state

    # ------------------------------------------------------------------ configuration
    def _group_defaults(self, rho: float) -> Dict:
        return {"rho": rho}

    def _groups(self, targets: Optional[torch.Tensor]) -> List[Tuple[Optional[torch.Tensor], float]]:
        """``(index, rho)`` per sample group; ``index=None`` is the whole batch."""
        return [(None, float(self.param_groups[0]["rho"]))]

    def _params(self) -> List[torch.nn.Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    # ------------------------------------------------------------------ two-pass access
    @torch.no_grad()
    def _perturb(self, rho: float, grads: Optional[List[Optional[torch.Tensor]]] = None) -> None:
        """Move to ``w + rho * g / ||g||``, ``g`` = ``grads`` (one entry per parameter) or the ``.grad`` now held."""
        params = self._params()
        if grads is None:
            grads = [p.grad for p in params]
        present = [g for g in grads if g is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present])) if present else 0.0
        scale = rho / (norm + 1e-12)
        for p, g in zip(params, grads):
            if g is None:
                continue
            e_w = g * scale.to(g.dtype) if torch.is_tensor(scale) else g * scale
            self.state[p]["sam_w"] = p.detach().clone()  # restored exactly (w + e - e is not w in floating point)
            p.add_(e_w)

    @torch.no_grad()
    def _restore(self) -> None:
        for p in self._params():
            w = self.state[p].pop("sam_w", None) if p in self.state else None
            if w is not None:
                p.copy_(w)

    def first_step(self, zero_grad: bool = False) -> None:
        """Move to ``w + rho * g / ||g||`` using the gradients now in ``.grad``."""
        self._perturb(float(self.param_groups[0]["rho"]))
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def second_step(self, zero_grad: bool = False) -> None:
        """Return to ``w`` and let the base optimiser step with the gradients now in ``.grad`` (taken at the
        perturbed point)."""
        self._restore()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ the grouped step
    def _call(self, closure: Closure, index: Optional[torch.Tensor], perturbed: bool) -> torch.Tensor:
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = closure(index, perturbed) if self._closure_args else closure()
        if loss is None:
            raise ValueError("the closure returned no loss: it must call backward() and return the loss tensor.")
        return loss.detach()

    @torch.no_grad()
    def step(  # type: ignore[override]  # a sharpness-aware step needs the closure and returns its loss
        self, closure: Optional[Closure] = None, targets: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """
        One sharpness-aware step.

        :param closure: ``closure(index=None, perturbed=False)`` (see the module docstring); SAM also takes a plain
                        ``closure()``.
        :param targets: Class labels of the batch rows (ImbSAM and SSE-SAM split the batch by them).
        :return: The batch loss at ``w`` (the sum over the groups).
        """
        if closure is None:
            raise ValueError(f"{type(self).__name__}.step needs a closure that computes the loss and calls backward().")
        self._closure_args = _accepts_arguments(closure)
        # a make_closure closure is told that a step starts: its first pass at w updates the running statistics
        getattr(closure, "new_step", lambda: None)()
        groups = self._groups(targets)
        if not self._closure_args and (len(groups) > 1 or groups[0][0] is not None):
            raise ValueError(
                f"{type(self).__name__} forwards sample groups separately: the closure must accept "
                "(index, perturbed); see art_purify.optim.make_closure."
            )
        params = self._params()
        if all(rho == 0 for _, rho in groups):  # no perturbation: one pass over the whole batch, the base step
            loss = self._call(closure, None, False)
            self.base_optimizer.step()
            return loss
        total: List[Optional[torch.Tensor]] = [None] * len(params)

        def accumulate():
            for i, p in enumerate(params):
                if p.grad is not None:
                    previous = total[i]
                    total[i] = p.grad.clone() if previous is None else previous.add_(p.grad)

        # a group with no sample in the batch contributes nothing
        groups = [(index, rho) for index, rho in groups if index is None or index.numel() > 0]
        loss_sum: Optional[torch.Tensor] = None
        directions = []
        # Every pass at w first, then the perturbed passes: a "batch" closure forwards the whole batch once for all
        # the passes at w (the weights have not moved in between) and backpropagates each group's rows of it.
        for index, rho in groups:
            loss = self._call(closure, index, False)
            loss_sum = loss if loss_sum is None else loss_sum + loss
            if rho > 0:
                directions.append((index, rho, [p.grad for p in params]))
            else:
                accumulate()
        for index, rho, grads in directions:
            self._perturb(rho, grads)
            try:
                self._call(closure, index, True)
            finally:  # never leave the weights at the perturbed point, even if the closure raises
                self._restore()
            accumulate()
        for p, g in zip(params, total):
            p.grad = g
        self.base_optimizer.step()
        return cast(torch.Tensor, loss_sum)  # every batch has at least one non-empty group

    # ------------------------------------------------------------------ state
    _EXTRA = ("base_optimizer", "tail_mask", "eta", "num_classes", "_init")

    def __getstate__(self) -> Dict:
        """Pickling and ``copy.deepcopy`` keep the base optimiser (sharing groups and state) and the class split."""
        state = super().__getstate__()
        state.update({k: self.__dict__[k] for k in self._EXTRA if k in self.__dict__})
        return state

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
        self.base_optimizer.state = self.state


class _GroupSAM(SAM):
    """Head/tail grouped SAM: the split comes from per-class training counts and ``eta``, or from ``tail_classes``."""

    def __init__(self, params, base_optimizer, class_counts=None, tail_classes=None, eta: float = 100, **kwargs):
        if (class_counts is None) == (tail_classes is None):
            raise ValueError("give exactly one of class_counts (with eta) or tail_classes.")
        eta = _check_non_negative("eta", eta)
        if class_counts is not None:
            counts = torch.as_tensor(class_counts)
            if (
                counts.ndim != 1
                or counts.numel() < 2
                or torch.is_floating_point(counts)
                and not torch.equal(counts, counts.round())
            ):
                raise ValueError(
                    f"class_counts must be one integer count per class (at least 2 classes), got " f"{class_counts!r}."
                )
            if (counts < 0).any():
                raise ValueError("class_counts must not be negative.")
            self.num_classes: Optional[int] = int(counts.numel())
            tail = counts < eta
        else:
            tail_list = [int(c) for c in tail_classes]
            if any(c < 0 for c in tail_list):
                raise ValueError(f"tail_classes must be class indices >= 0, got {tail_classes!r}.")
            self.num_classes = None
            tail = torch.zeros(max(tail_list, default=-1) + 1, dtype=torch.bool)
            tail[tail_list] = True
        self.tail_mask = tail.to(torch.bool)
        self.eta = eta
        super().__init__(params, base_optimizer, **kwargs)

    def first_step(self, zero_grad: bool = False) -> None:
        raise RuntimeError(
            f"{type(self).__name__} perturbs the head and tail groups separately: use "
            "step(closure, targets=labels) (see art_purify.optim.make_closure)."
        )

    @property
    def tail_classes(self) -> List[int]:
        return torch.nonzero(self.tail_mask).flatten().tolist()

    def _rhos(self) -> Tuple[float, float]:
        raise NotImplementedError

    def split(self, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Row indices of the head samples and of the tail samples of a batch."""
        if targets is None:
            raise ValueError(f"{type(self).__name__}.step needs targets (the batch labels) to split head and tail.")
        targets = torch.as_tensor(targets).detach().flatten().cpu().long()
        if targets.numel() and (
            targets.min() < 0 or (self.num_classes is not None and targets.max() >= self.num_classes)
        ):
            raise ValueError(
                f"targets hold class {int(targets.max())} but class_counts has {self.num_classes} " "classes."
            )
        mask = self.tail_mask
        in_range = targets < mask.numel()
        is_tail = torch.zeros_like(targets, dtype=torch.bool)
        is_tail[in_range] = mask[targets[in_range]]
        return torch.nonzero(~is_tail).flatten(), torch.nonzero(is_tail).flatten()

    def _groups(self, targets):
        head, tail = self.split(targets)
        rho_head, rho_tail = self._rhos()
        return [(head, rho_head), (tail, rho_tail)]


class ImbSAM(_GroupSAM):
    """
    ImbSAM (Zhou et al., ICCV 2023): SAM on the tail classes only, ``G = grad L_head(w) + grad L_tail(w + e_tail)``.
    Tail classes are those with fewer than ``eta`` training samples (or ``tail_classes``).

    ``ImbSAM(model.parameters(), torch.optim.SGD, class_counts=counts, eta=100, rho=0.05, lr=0.1, momentum=0.9)``

    | Paper link: https://arxiv.org/abs/2308.07815
    """

    def __init__(
        self,
        params: Optional[Iterable],
        base_optimizer: BaseOptimizer,
        class_counts: Optional[ArrayLike] = None,
        tail_classes: Optional[Sequence[int]] = None,
        eta: float = 100,
        rho: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            params, base_optimizer, class_counts=class_counts, tail_classes=tail_classes, eta=eta, rho=rho, **kwargs
        )

    def _rhos(self) -> Tuple[float, float]:
        return 0.0, float(self.param_groups[0]["rho"])


class SSESAM(_GroupSAM):
    """
    SSE-SAM (AAAI 2025): SAM on the head and on the tail classes with their own radii, then, from epoch
    ``ceil(gamma * epochs)`` on, ``rho_head = 0`` (ImbSAM). Call :meth:`epoch_end` after every epoch (the
    :class:`~art_purify.defences.trainer.SharpnessAwareTrainerPyTorch` does).

    ``SSESAM(model.parameters(), torch.optim.SGD, class_counts=counts, eta=100, rho_head=0.05, rho_tail=0.1,
    gamma=0.7, epochs=200, lr=0.1, momentum=0.9)``

    | Paper link: https://arxiv.org/abs/2412.13715
    """

    def __init__(
        self,
        params: Optional[Iterable],
        base_optimizer: BaseOptimizer,
        class_counts: Optional[ArrayLike] = None,
        tail_classes: Optional[Sequence[int]] = None,
        eta: float = 100,
        rho_head: float = 0.05,
        rho_tail: float = 0.1,
        gamma: float = 0.7,
        epochs: int = 200,
        **kwargs: Any,
    ) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}.")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
        self._init = {
            "rho_head": _check_non_negative("rho_head", rho_head),
            "rho_tail": _check_non_negative("rho_tail", rho_tail),
            "gamma": float(gamma),
            "epochs": int(epochs),
            "epoch": 0,
        }
        super().__init__(
            params,
            base_optimizer,
            class_counts=class_counts,
            tail_classes=tail_classes,
            eta=eta,
            rho=rho_tail,
            **kwargs,
        )

    def _group_defaults(self, rho: float) -> Dict:
        return dict(self._init)

    @property
    def epoch(self) -> int:
        """Completed epochs (kept in the parameter groups, so it survives ``state_dict`` round trips)."""
        return int(self.param_groups[0]["epoch"])

    @property
    def switch_epoch(self) -> int:
        """The first epoch (0-based) trained with ``rho_head = 0``."""
        group = self.param_groups[0]
        return int(math.ceil(group["gamma"] * group["epochs"] - 1e-9))

    @property
    def phase(self) -> int:
        """1 (head and tail perturbed) before :attr:`switch_epoch`, 2 (ImbSAM) from it on."""
        return 1 if self.epoch < self.switch_epoch else 2

    def epoch_end(self) -> None:
        """Count one finished epoch (the phase switch happens here)."""
        for group in self.param_groups:
            group["epoch"] = int(group["epoch"]) + 1

    def _rhos(self) -> Tuple[float, float]:
        group = self.param_groups[0]
        return (float(group["rho_head"]) if self.phase == 1 else 0.0), float(group["rho_tail"])


class _FrozenBatchNorm:
    """Within the block, BatchNorm layers of ``model`` normalise with batch statistics but keep their running
    statistics and batch counter: the layers update copies, and the original buffers (never written) are put back on
    exit, even after a non-finite pass. A graph built inside the block may be backpropagated after it."""

    BUFFERS = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, model: torch.nn.Module):
        self.layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def __enter__(self):
        self.saved = [{k: getattr(m, k) for k in self.BUFFERS if getattr(m, k, None) is not None} for m in self.layers]
        for m, buffers in zip(self.layers, self.saved):
            for k, value in buffers.items():
                setattr(m, k, value.clone())
        return self

    def __exit__(self, *exc):
        for m, buffers in zip(self.layers, self.saved):
            for k, value in buffers.items():
                setattr(m, k, value)
        return False


BATCHNORM_MODES = ("auto", "batch", "group")


def has_batchnorm(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer (whose training-mode output depends on the other samples)."""
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def make_closure(
    model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor, batchnorm: str = "auto"
) -> Closure:
    """
    A closure for :class:`SAM`, :class:`ImbSAM` and :class:`SSESAM` on the batch ``(x, y)``.

    :param loss_fn: A per-sample loss (``reduction="none"``) or a module with a ``reduction`` attribute; the closure
                    sums the losses of the asked rows and divides by the whole batch size.
    :param batchnorm: How a group's pass treats BatchNorm layers in training mode:

        - ``"group"``: forward only the group's rows (the fast path: each sample is forwarded once per pass it
          takes part in); each group is normalised with its own batch statistics. Exact for models without BatchNorm.
        - ``"batch"``: forward the whole batch and keep the group's rows of the loss, so every pass normalises with
          the whole batch's statistics and differentiates through them: the update equals the definition with
          BatchNorm too. The passes at ``w`` share one forward while the weights are unchanged (its graph is kept
          until the first perturbed pass). Measured step times of both modes: ``docs/benchmarks.md``.
        - ``"auto"`` (default): ``"batch"`` if ``model`` has BatchNorm layers, else ``"group"``.

        Running statistics are updated once per step, by the step's first unperturbed pass (by each group's
        unperturbed pass in ``"group"`` mode); perturbed passes never update them. The closure may serve several
        steps: :meth:`SAM.step` calls its ``new_step()`` as a step starts, and in the two-pass style (see
        :class:`SAM`) a perturbed pass ends the step's passes at ``w``, so the next unperturbed pass starts a step.
    """
    size = len(x)
    if size == 0:
        raise ValueError("empty batch.")
    if batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}.")
    whole = batchnorm == "batch" or (batchnorm == "auto" and has_batchnorm(model))
    updated = [False]  # this step's running statistics are done (reset as a step starts)
    shared: Dict = {}  # "batch" mode: the whole batch's per-sample losses at w, with their graph

    def weights_version():
        return tuple(p._version for p in model.parameters())

    def closure(index: Optional[torch.Tensor] = None, perturbed: bool = False) -> torch.Tensor:
        if whole and index is not None and not perturbed:
            # Passes at w share one forward while the weights are unchanged (the optimiser makes every pass at w
            # before it perturbs); each backpropagates its rows and keeps the graph for the next.
            if shared.get("version") != weights_version():
                shared.clear()
                with _FrozenBatchNorm(model) if updated[0] else contextlib.nullcontext():
                    shared["losses"] = _per_sample(loss_fn, model(x), y)  # backpropagated after the block
                shared["version"] = weights_version()
            loss = shared["losses"][index.to(x.device)].sum() / size
            loss.backward(retain_graph=True)
            updated[0] = True
            return loss
        shared.clear()  # frees the retained graph
        freeze = perturbed or (whole and updated[0])
        with _FrozenBatchNorm(model) if freeze else contextlib.nullcontext():
            if index is None:
                loss = _per_sample(loss_fn, model(x), y).sum() / size
            elif whole:
                loss = _per_sample(loss_fn, model(x), y)[index.to(x.device)].sum() / size
            else:
                loss = _per_sample(loss_fn, model(x[index.to(x.device)]), y[index.to(y.device)]).sum() / size
            loss.backward()
        updated[0] = not perturbed  # a perturbed pass ends the step's passes at w (the two-pass style)
        return loss

    def new_step() -> None:
        """A step starts: its first unperturbed pass updates the running statistics."""
        updated[0] = False
        shared.clear()

    closure.batchnorm = "batch" if whole else "group"  # type: ignore[attr-defined]
    closure.new_step = new_step  # type: ignore[attr-defined]
    return closure


def _per_sample(loss_fn: Callable, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    reduction = getattr(loss_fn, "reduction", None)
    if reduction is not None and reduction != "none":
        loss_fn.reduction = "none"  # type: ignore[attr-defined]
        try:
            losses = loss_fn(logits, targets)
        finally:
            loss_fn.reduction = reduction  # type: ignore[attr-defined]
    else:
        losses = loss_fn(logits, targets)
    if losses.ndim == 0:
        raise ValueError("loss_fn must return one loss per sample (reduction='none').")
    return losses


__all__: Sequence[str] = ["SAM", "ImbSAM", "SSESAM", "make_closure", "has_batchnorm"]
