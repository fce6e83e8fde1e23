# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Small helpers shared across the package: devices, seeded generators, machine description."""

from __future__ import annotations

import platform
from typing import Any, Dict, List, Optional

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


def step_generator(seed: int, step: int, device: Optional[torch.device] = None) -> torch.Generator:
    """
    A ``torch.Generator`` seeded from ``(seed, step)`` alone.

    Drawing every random number of a training step from its own generator makes a resumed run draw exactly what an
    uninterrupted one would, with no RNG state to save.
    """
    generator = torch.Generator(device=device if device is not None else "cpu")
    generator.manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63 - 1))
    return generator


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
