# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
Example batches, the unit of an evaluation's seeds, checkpoints and shards.

An evaluation splits its examples into consecutive batches of ``batch_size`` (``seeding="batch"``, the default) and
runs every phase (clean votes, each attack and its votes) batch by batch, with a seed derived from the evaluation's
seed, the phase's name and the batch's index (:func:`batch_key`). A batch's outcome therefore depends on its own
examples, the seed and the settings alone: not on the other batches, on the order in which they run, or on which
process runs them. This is what lets ``N`` ranks split the batches (rank ``r`` takes batches ``r, r + N, ...``) and
merge a report equal, example by example, to a single process's (same device type and thread count: floating-point
reductions may depend on them).

Batch 0 keeps the phase's own name as its key, so an evaluation of at most ``batch_size`` examples draws what the
whole-run seeding of earlier versions drew; ``seeding="phase"`` treats the whole run as one batch and reproduces
every report of those versions (``report_version`` 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

#: ``"batch"``: seeds per example batch (shardable); ``"phase"``: one batch for the whole run (report_version 1).
SEEDINGS = ("batch", "phase")


def batch_slices(n: int, batch_size: int, seeding: str = "batch") -> List[slice]:
    """The example batches of an evaluation of ``n`` examples."""
    if seeding not in SEEDINGS:
        raise ValueError(f"seeding must be one of {SEEDINGS}, got {seeding!r}.")
    if seeding == "phase":
        return [slice(0, n)]
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def batch_key(key: str, index: int) -> str:
    """The seed key of phase ``key`` on batch ``index`` (batch 0 keeps ``key``: see the module docstring)."""
    return key if index == 0 else f"{key}@batch{index}"


def phase_file(index: int, phase: str) -> str:
    """The checkpoint name of ``phase`` (``"clean"`` or an attack) of batch ``index``."""
    return f"b{index:05d}-{phase}"


def check_shard(shard: Tuple[int, int]) -> Tuple[int, int]:
    """``(rank, world)`` with ``0 <= rank < world``, or a ``ValueError``."""
    try:
        rank, world = (int(v) for v in shard)
    except (TypeError, ValueError) as err:
        raise ValueError(f"shard must be (rank, world_size), got {shard!r}.") from err
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard!r}.")
    return rank, world


def owned_batches(n_batches: int, shard: Tuple[int, int]) -> List[int]:
    """The batches rank ``shard[0]`` of ``shard[1]`` runs: every ``world``-th one, from its rank."""
    rank, world = check_shard(shard)
    return list(range(rank, n_batches, world))


@dataclasses.dataclass
class EvaluationShard:
    """
    The per-example outcomes of some batches of an evaluation, before the report and its sanity checks.

    ``batches`` maps a batch index to its arrays: ``clean/prediction``, ``clean/margin``, ``clean/time_s`` and, per
    attack ``a``, ``a/x_adv``, ``a/prediction``, ``a/margin``, ``a/attacked``, ``a/time_s``. Shards of one run (same
    ``fingerprint``) are combined by :func:`merge_shards`; a complete one is turned into a report by
    :func:`~art_purify.evaluation.evaluate` (``shards=...``).
    """

    fingerprint: str
    n: int
    n_batches: int
    random_defence: bool
    batches: Dict[int, Dict[str, np.ndarray]]
    #: The batches whose every phase came from the checkpoint, and the seconds the loaded phases had taken.
    loaded: List[int] = dataclasses.field(default_factory=list)
    loaded_s: float = 0.0

    @property
    def complete(self) -> bool:
        """Whether every batch of the run is here."""
        return sorted(self.batches) == list(range(self.n_batches))

    def save(self, path: str) -> None:
        """Write the shard to one ``.npz`` (for launchers whose processes share a file system, not a process
        group)."""
        arrays: Dict[str, Any] = {
            "meta/fingerprint": np.str_(self.fingerprint),
            "meta/n": np.int64(self.n),
            "meta/n_batches": np.int64(self.n_batches),
            "meta/random_defence": np.bool_(self.random_defence),
        }
        for index, values in self.batches.items():
            arrays.update({f"{index}/{key}": value for key, value in values.items()})
        np.savez(path, **arrays)  # no object arrays: load needs no pickle

    @classmethod
    def load(cls, path: str) -> "EvaluationShard":
        """Read a shard written by :meth:`save`."""
        batches: Dict[int, Dict[str, np.ndarray]] = {}
        with np.load(path) as data:
            meta = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("meta/")}
            for key in data.files:
                head, rest = key.split("/", 1)
                if head != "meta":
                    batches.setdefault(int(head), {})[rest] = data[key]
        return cls(
            str(meta["fingerprint"]), int(meta["n"]), int(meta["n_batches"]), bool(meta["random_defence"]), batches
        )


def merge_shards(shards: Sequence[Optional[EvaluationShard]]) -> EvaluationShard:
    """
    Combine the shards of one evaluation (from every rank) into one; the result is complete when every batch was
    run by some rank.

    :raises ValueError: When the shards come from runs with other data or settings, or two hold the same batch.
    """
    present = [s for s in shards if s is not None]
    if not present:
        raise ValueError("merge_shards needs at least one shard.")
    first = present[0]
    batches: Dict[int, Dict[str, np.ndarray]] = {}
    loaded: List[int] = []
    loaded_s = 0.0
    for k, shard in enumerate(present):
        if shard.fingerprint != first.fingerprint:
            raise ValueError(
                f"shard {k} comes from an evaluation with other data, settings or weights than shard 0; shards of "
                "one run must share them."
            )
        twice = sorted(set(batches) & set(shard.batches))
        if twice:
            raise ValueError(f"batch {twice[0]} is in two shards; each batch must be run by exactly one rank.")
        batches.update(shard.batches)
        loaded += shard.loaded
        loaded_s += shard.loaded_s
    return EvaluationShard(
        first.fingerprint, first.n, first.n_batches, first.random_defence, batches, sorted(loaded), loaded_s
    )
