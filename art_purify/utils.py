# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Small helpers shared across the package: devices, frozen networks, seeded generators, machine description."""

from __future__ import annotations

import platform
from typing import Any, ContextManager, Dict, List, Optional

import numpy as np
import torch


def resolve_device(device: Optional[str] = None) -> torch.device:
    """
    Pick a torch device: CUDA when available and ``device`` is ``None`` or ``"auto"``, else the one asked for.

    :raises ValueError: If CUDA is requested but not available, or the name is not a torch device.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda[:N]'.") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine.")
    return resolved


def module_dtype(module: torch.nn.Module, default: torch.dtype = torch.float32) -> torch.dtype:
    """The dtype of ``module``'s first parameter (``default`` for a module without parameters)."""
    for param in module.parameters():
        return param.dtype
    return default


def follow_device(module: torch.nn.Module, device: torch.device) -> None:
    """Move ``module`` to ``device`` if its parameters are elsewhere (a defence follows its input's device)."""
    if next(module.parameters(), torch.empty(0)).device != device:
        module.to(device)


class _Frozen:
    """The context manager of :func:`eval_mode` and :func:`frozen`: reusable (a checkpointed call's recomputation
    enters it once per backward pass) and re-entrant; each entry records the flags it restores. The submodules and
    parameters are listed on the first entry and kept, so that later entries (one per recomputed call) only read
    and set flags."""

    def __init__(self, module: Any, parameters: bool) -> None:
        self.module, self.parameters = module, parameters
        self._members: Optional[Any] = None
        self._saved: List[Any] = []

    def __enter__(self) -> Any:
        if self._members is None:
            is_module = isinstance(self.module, torch.nn.Module)  # a plain function has no state to freeze
            subs = list(self.module.modules()) if is_module else []
            self._members = (subs, list(self.module.parameters()) if is_module and self.parameters else [])
        subs, params = self._members
        modes = [sub.training for sub in subs]
        grads = [param.requires_grad for param in params]
        self._saved.append((modes, grads))
        try:
            if any(modes):
                self.module.eval()
            for param, flag in zip(params, grads):
                if flag:
                    param.requires_grad_(False)
        except BaseException:
            self._restore()
            raise
        return self.module

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        subs, params = self._members  # type: ignore[misc]
        modes, grads = self._saved.pop()
        for sub, flag in zip(subs, modes):
            if sub.training != flag:
                sub.training = flag
        for param, flag in zip(params, grads):
            if param.requires_grad != flag:
                param.requires_grad_(flag)


def eval_mode(module: torch.nn.Module) -> ContextManager[torch.nn.Module]:
    """
    A context manager: within the block ``module`` is in eval mode (``module.eval()``); on exit, however the block
    ends, every submodule gets back its own ``training`` flag (a model whose submodules were in mixed modes keeps that
    mix). Reusable and re-entrant.

    :param module: The module to run in eval mode.
    """
    return _Frozen(module, parameters=False)


def frozen(module: torch.nn.Module) -> ContextManager[torch.nn.Module]:
    """
    A context manager: within the block ``module`` is in eval mode and none of its parameters requires a gradient,
    so that a defence's network neither moves its own state (BatchNorm statistics, dropout draws) nor collects
    gradients (an attacker's backward pass reaches only the input); on exit, however the block ends, every
    submodule's ``training`` flag and every parameter's ``requires_grad`` are put back as they were. A graph built
    inside the block does not reach the parameters, also when it is backpropagated after the block. Reusable and
    re-entrant; a plain function in place of a module has no state and is left alone.

    :param module: The network to freeze for the block.
    """
    return _Frozen(module, parameters=True)


def step_generator(seed: int, step: int, device: Optional[torch.device] = None) -> torch.Generator:
    """
    A ``torch.Generator`` seeded from ``(seed, step)`` alone.

    Drawing every random number of a training step from its own generator makes a resumed run draw exactly what an
    uninterrupted one would, with no RNG state to save.
    """
    generator = torch.Generator(device=device if device is not None else "cpu")
    generator.manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63 - 1))
    return generator


def keyed_seed(seed: int, key: int) -> int:
    """A 63-bit seed from ``(seed, key)`` alone (numpy's ``SeedSequence``: stable across processes and versions)."""
    state = np.random.SeedSequence([int(seed), int(key)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


class KeyedStreams:
    """
    One random stream per example: row ``i`` of every draw comes from its own CPU ``torch.Generator`` seeded from
    ``(seed, keys[i])`` (:func:`keyed_seed`) and is then moved to the requested device. An example's draws therefore
    depend on the seed, its key and the order of the draws alone: not on the batch it is in, its position there, the
    other rows, or the device (a CUDA run gets the same noise as a CPU run).

    Pass it wherever the package's samplers take a ``torch.Generator`` (:func:`random_normal`,
    :func:`random_uniform` accept both). Slicing (``streams[2:5]``) gives the streams of those rows, which continue
    where they are; :meth:`restarted` gives fresh streams with the same keys.
    """

    def __init__(self, seed: int, keys: Any, generators: Optional[List[torch.Generator]] = None) -> None:
        self.seed = int(seed)
        self.keys = [int(k) for k in keys]
        if generators is None:
            generators = [torch.Generator().manual_seed(keyed_seed(self.seed, k)) for k in self.keys]
        self.generators = generators

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, rows: slice) -> "KeyedStreams":
        return KeyedStreams(self.seed, self.keys[rows], self.generators[rows])

    def restarted(self) -> "KeyedStreams":
        """New streams with the same keys, at their first draw."""
        return KeyedStreams(self.seed, self.keys)

    def draw(
        self, fn: Any, shape: Any, device: Any = None, dtype: Optional[torch.dtype] = None, row_dim: int = 0
    ) -> torch.Tensor:
        """``fn(shape_without_row_dim, generator=g)`` per row (``fn``: ``torch.randn`` or ``torch.rand``), stacked
        along ``row_dim``."""
        shape = tuple(int(s) for s in shape)
        if shape[row_dim] != len(self.keys):
            raise ValueError(f"a draw of shape {shape} has {shape[row_dim]} rows but there are {len(self.keys)} keys.")
        per_row = shape[:row_dim] + shape[row_dim + 1 :]
        dtype = dtype or torch.get_default_dtype()
        rows = [fn(per_row, generator=g, dtype=dtype) for g in self.generators]
        return torch.stack(rows, dim=row_dim).to(device)


def random_normal(
    shape: Any, generator: Any, device: Any, dtype: Optional[torch.dtype] = None, row_dim: int = 0
) -> torch.Tensor:
    """``torch.randn(shape)`` from ``generator``: a ``torch.Generator`` (one stream for the whole tensor) or
    :class:`KeyedStreams` (one stream per row along ``row_dim``)."""
    if isinstance(generator, KeyedStreams):
        return generator.draw(torch.randn, shape, device, dtype, row_dim)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def random_uniform(
    shape: Any, generator: Any, device: Any, dtype: Optional[torch.dtype] = None, row_dim: int = 0
) -> torch.Tensor:
    """``torch.rand(shape)`` from a ``torch.Generator`` or :class:`KeyedStreams` (see :func:`random_normal`)."""
    if isinstance(generator, KeyedStreams):
        return generator.draw(torch.rand, shape, device, dtype, row_dim)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def stream_rows(generator: Any, rows: slice) -> Any:
    """The part of ``generator`` that draws for ``rows``: the streams of those rows for :class:`KeyedStreams`, the
    generator itself otherwise (one stream for every row)."""
    return generator[rows] if isinstance(generator, KeyedStreams) else generator


def machine_description() -> Dict[str, str]:
    """A short description of the machine and library versions, for model cards and reports."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": str(torch.get_num_threads()),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


class AtomicParamsMixin:
    """
    ``set_params`` that is all-or-nothing: the new values are set and validated together, and when validation fails
    every parameter is put back as it was (then validated again, so that state derived from the parameters is in
    step with them) before the error propagates. ART's own ``set_params`` validates after setting and leaves the
    invalid values behind.

    A class using it declares ``params`` (the names ``set_params`` accepts) and ``_check_params()``; it may override
    :meth:`_after_set_params` for work that follows a successful change (restarting a noise stream, say).
    """

    params: List[str] = []

    def _after_set_params(self) -> None:
        """Called after a successful :meth:`set_params`."""

    def set_params(self, **kwargs: Any) -> None:
        """
        Set parameters listed in ``params`` and validate them; on a ``ValueError`` (or any error) nothing changes.

        :raises ValueError: For a name that is not a parameter, or a value that validation rejects.
        """
        unknown = [key for key in kwargs if key not in self.params]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} is not a parameter of {type(self).__name__}; parameters: "
                f"{self.params}."
            )
        saved = {key: getattr(self, key) for key in kwargs}
        for key, value in kwargs.items():
            setattr(self, key, value)
        try:
            self._check_params()  # type: ignore[attr-defined]
        except BaseException:
            for key, value in saved.items():
                setattr(self, key, value)
            self._check_params()  # type: ignore[attr-defined]
            raise
        self._after_set_params()
