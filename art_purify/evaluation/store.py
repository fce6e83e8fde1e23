# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The on-disk store of finished evaluation phases, for ``resume``, and the fingerprint that guards it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union, cast

import numpy as np
import torch

from art_purify.evaluation.attacks import ATTACKS, AttackSettings, defences_of


def params_of(defence: Any) -> Dict[str, Any]:
    """JSON-friendly values of a defence's declared parameters (other values by their type name)."""
    out: Dict[str, Any] = {}
    for key in getattr(defence, "params", []):
        value = getattr(defence, key, None)
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            out[key] = list(value)
        else:
            out[key] = type(value).__name__
    return out


def fingerprint(  # pylint: disable=too-many-arguments
    x: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    settings: AttackSettings,
    eot: int,
    votes: int,
    seed: int,
    classifier: Any,
    cascade: bool = False,
    seeding: str = "batch",
) -> str:
    """A hash of everything that decides the outcome of the attack phases: data, settings, defences and weights."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    config: Dict[str, Any] = {
        "attacks": list(names),
        "settings": settings.to_json(),
        "eot": eot,
        "votes": votes,
        "seed": seed,
        "defences": [[type(d).__name__, params_of(d)] for d in defences_of(classifier)],
        "seeding": seeding,
        "format": 3,  # phases save vote counts (report_version 3): older checkpoints are stale
    }
    if cascade:
        config["cascade"] = True
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    modules = [classifier.model] + [
        m for d in defences_of(classifier) for m in vars(d).values() if isinstance(m, torch.nn.Module)
    ]
    for module in modules:  # the weights of the classifier and of the defences' networks
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class PhaseStore:
    """
    Finished phases of an evaluation on disk, one ``.npz`` per (example batch, phase) such as ``b00003-pgd.npz``, and
    ``meta.json`` (the run's fingerprint). Several ranks may share the directory: each writes only the files of its
    own batches, every file carries the fingerprint, and a file with another fingerprint (left by an earlier run) is
    treated as missing.

    :param directory: Where to keep them (``None``: nothing is stored).
    :param fingerprint: The run's :func:`fingerprint`; a resumed run must match the stored one.
    :param resume: Keep the stored phases (``False``: start again; see :meth:`clear`).
    :param rank: The caller's rank (its temporary files are named after it, so ranks never collide).
    """

    def __init__(self, directory: Optional[Union[str, Path]], fingerprint: str, resume: bool, rank: int = 0) -> None:
        self.directory = None if directory is None else Path(directory)
        self.fingerprint = fingerprint
        self.rank = int(rank)
        if self.directory is None:
            if resume:
                raise ValueError("resume=True needs a checkpoint_dir.")
            return
        meta = self.directory / "meta.json"
        if resume:
            if not meta.is_file():
                raise FileNotFoundError(f"resume was asked for but there is no checkpoint at {meta}.")
            if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
                raise ValueError(
                    f"the checkpoint in {self.directory} was made with other data or settings; run "
                    "without resume to start again."
                )
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:  # the whole-run files of versions before per-batch seeding
            for name in ("clean", *ATTACKS):
                (self.directory / f"{name}.npz").unlink(missing_ok=True)
        tmp = self.directory / f".meta.{self.rank}.tmp"
        tmp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")
        tmp.replace(meta)  # every rank writes the same content; the replace is atomic

    def _path(self, name: str) -> Path:
        return Path(cast(Path, self.directory)) / f"{name}.npz"

    def clear(self, names: Sequence[str]) -> None:
        """Remove the files of phases ``names`` (a new run's own batches)."""
        if self.directory is not None:
            for name in names:
                self._path(name).unlink(missing_ok=True)

    def load(self, name: str) -> Optional[Dict[str, np.ndarray]]:
        """The arrays saved for phase ``name``, or ``None`` when it has not finished in this run."""
        if self.directory is None or not self._path(name).is_file():
            return None
        with np.load(self._path(name)) as data:
            arrays = {k: data[k] for k in data.files}
        if str(arrays.pop("fingerprint", "")) != self.fingerprint:
            return None  # left by a run with other data or settings
        return arrays

    def save(self, name: str, **arrays: Any) -> None:
        """Save the arrays of phase ``name`` atomically (a crash leaves the previous state)."""
        if self.directory is None:
            return
        tmp = self.directory / f".{name}.{self.rank}.tmp.npz"
        np.savez(tmp, fingerprint=np.str_(self.fingerprint), **arrays)
        tmp.replace(self._path(name))
