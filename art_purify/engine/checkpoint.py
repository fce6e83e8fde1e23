# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Atomic checkpoint and artefact writing; the newest checkpoint is kept with the one before it, and loading falls
back to that one when the newest cannot be read."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

PathLike = Union[str, os.PathLike]
_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(ValueError):
    """No usable checkpoint: every candidate file is missing or cannot be read (the message names each one)."""


def previous_checkpoint(path: PathLike) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint it replaced: ``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def has_checkpoint(path: PathLike) -> bool:
    """Whether ``path`` or the previous checkpoint beside it (:func:`previous_checkpoint`) exists."""
    return Path(path).is_file() or previous_checkpoint(path).is_file()


def artefact_mode(directory: bool = False) -> int:
    """The permissions of a written artefact: the usual ones under the process's umask (``tempfile`` makes 0600 files
    and 0700 directories)."""
    return (0o777 if directory else 0o666) & ~_UMASK


def _fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


def _atomic_write(path: PathLike, write: Callable[[str], None], before_replace: Optional[Callable] = None) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, flushed to disk, then renamed onto ``path``;
    ``before_replace()`` runs between the two (when it returns a callable, that undoes it if the rename fails). A
    failing call leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    os.close(fd)
    undo = None
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:  # on disk before the rename: a crash cannot leave a truncated file behind
            os.fsync(handle.fileno())
        os.chmod(tmp, artefact_mode())  # mkstemp creates 0600; artefacts get the usual permissions
        if before_replace is not None:
            undo = before_replace()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if undo is not None:
            undo()
        raise
    _fsync_dir(path.parent)


def save_checkpoint(state: Dict[str, Any], path: PathLike, keep_previous: bool = True) -> None:
    """
    Write a training checkpoint atomically: a crash or a failing write leaves the checkpoint already there intact.

    :param keep_previous: Keep the checkpoint this one replaces as :func:`previous_checkpoint` (renamed, not
                          copied), so that one bad file cannot lose the run (:func:`load_latest_checkpoint` falls back
                          to it). A file at ``path`` that is not even a complete archive (a truncated write) is not
                          kept: the previous checkpoint stays the good one before it.
    """
    path = Path(path)
    previous = previous_checkpoint(path)

    def rotate() -> Optional[Callable[[], None]]:
        if not (keep_previous and path.is_file() and zipfile.is_zipfile(path)):
            return None
        os.replace(path, previous)

        def undo() -> None:  # the new checkpoint could not be put in place: the old one goes back
            if not path.exists():
                os.replace(previous, path)

        return undo

    _atomic_write(path, lambda tmp: torch.save(state, tmp), before_replace=rotate)


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain Python values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_latest_checkpoint(path: PathLike) -> Tuple[Dict[str, Any], Path]:
    """
    Load the newest usable training checkpoint: ``path``, or when it is missing or cannot be read (a truncated
    write, say), the previous one beside it (:func:`previous_checkpoint`), with a warning naming the bad file.

    :return: ``(state, the file it was read from)``.
    :raises FileNotFoundError: If neither file exists.
    :raises CheckpointError: If none of the existing files can be read (naming each one and why).
    """
    path = Path(path)
    candidates = [path, previous_checkpoint(path)]
    if not any(candidate.is_file() for candidate in candidates):
        raise FileNotFoundError(f"there is no checkpoint at {path} (nor a previous one at {candidates[1]}).")
    problems: List[str] = []
    for candidate in candidates:
        if not candidate.is_file():
            problems.append(f"{candidate} does not exist")
            continue
        try:
            state = load_checkpoint(candidate)
            if not isinstance(state, dict) or "step" not in state:
                raise ValueError("it is not a training checkpoint (no 'step' entry)")
        except Exception as err:  # pylint: disable=broad-except  # torch raises many kinds for a damaged file
            problems.append(f"{candidate} cannot be read ({type(err).__name__}: {err})")
            continue
        if problems:
            warnings.warn(
                f"{'; '.join(problems)}: using the previous checkpoint {candidate} (step {state['step']}).",
                RuntimeWarning,
                stacklevel=2,
            )
        return state, candidate
    raise CheckpointError(
        f"no usable checkpoint: {'; '.join(problems)}. Start the run afresh in another output directory (or move "
        "these files away)."
    )


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
