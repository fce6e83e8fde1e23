# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Atomic checkpoint and artefact writing."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

PathLike = Union[str, os.PathLike]
_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic_write(path: PathLike, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; artefacts get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(state: Dict[str, Any], path: PathLike) -> None:
    """Write a training checkpoint atomically (a crash leaves the previous checkpoint intact)."""
    _atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain Python values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def write_json(obj: Any, path: PathLike) -> None:
    """Write JSON atomically with stable key order."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=2, sort_keys=True)
            handle.write("\n")

    _atomic_write(path, write)


def save_weights(
    state_dict: Dict[str, torch.Tensor],
    path: PathLike,
    dtype: Optional[torch.dtype] = None,
    metadata: Optional[Dict[str, str]] = None,
) -> None:
    """Export floating-point weights to safetensors atomically, optionally cast (fp16 storage)."""
    from safetensors.torch import save_file

    tensors = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
