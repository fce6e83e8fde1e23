# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Progress of long ``--cascade`` evaluations from their checkpoints, before their reports exist.

    python benchmarks/campaign_progress.py campaign/results15            # every run directory under it
    python benchmarks/campaign_progress.py campaign/results15/search     # one run
    python benchmarks/campaign_progress.py --compare campaign/results15/search-rho0 campaign/results15/uniform

For each run: the batches whose phases are done, the cumulative robust count after each attack of the cascade (an
example counts as robust after an attack when it was robust before and the attack, if it ran on it, did not break
it: the report's majority figure), and the time each attack took. Only finished (batch, attack) pairs are read; the
figures are partial until every batch has every phase. The labels are those of the embedded Fashion-MNIST test
images, in order (the evaluations of docs/results.md use the first N of them).

``--compare A B`` pairs two runs on the same images: the examples whose every batch phase both have finished, which
of them each run keeps after its whole cascade (its worst case), the exact McNemar p-value of the difference, and
on how many of them the clean majority predictions (and, where the checkpoints have them, the clean vote counts)
differ.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from art_purify.datasets import load_fashion_mnist
from art_purify.evaluation.runner import cascade_order

_FILE = re.compile(r"b(\d{5})-(.+)\.npz$")


def _phases(run: Path) -> Dict[int, Dict[str, Path]]:
    """The finished phase files of run directory ``run``, by batch index and phase name."""
    phases: Dict[int, Dict[str, Path]] = defaultdict(dict)
    for path in sorted((run / "partial").glob("b*.npz")):
        match = _FILE.search(path.name)
        if match:
            phases[int(match.group(1))][match.group(2)] = path
    return phases


def _batch_robust(done: Dict[str, Path], attacks: List[str], y: np.ndarray) -> List[Tuple[str, np.ndarray, float]]:
    """(phase, robust after it, time) for ``clean`` and the attacks of the cascade that batch ``done`` has finished,
    in cascade order: an example is robust after an attack when it was robust before and the attack, if it ran on
    it, did not break it (the report's majority figure)."""
    clean = np.load(done["clean"])
    robust = clean["prediction"] == y
    rows = [("clean", robust, float(clean["time_s"]))]
    for name in attacks:
        if name not in done:
            break
        data = np.load(done[name])
        attacked = data["attacked"] if "attacked" in data.files else np.ones(len(y), bool)
        robust = robust & ((data["prediction"] == y) | ~attacked)
        rows.append((name, robust, float(data["time_s"])))
    return rows


def _layout(phases: Dict[int, Dict[str, Path]]) -> Tuple[List[str], int]:
    """The cascade's attacks and the batch size (every batch has it but the last: batch b starts at b * size)."""
    attacks = cascade_order(sorted({p for b in phases.values() for p in b if p != "clean"}))
    first = phases[min(phases)]
    size = len(np.load(first["clean"])["prediction"]) if "clean" in first else 0
    return attacks, size


def run_progress(run: Path, labels: np.ndarray) -> str:
    """A text table of the finished phases of the run in directory ``run`` (``run/partial/b*.npz``)."""
    phases = _phases(run)
    if not phases:
        return f"{run}: no finished phase yet"
    attacks, size = _layout(phases)
    lines = [f"{run}: {len(phases)} batch(es) started"]
    header = f"{'batch':>6} {'n':>4} {'clean':>6} " + " ".join(f"{a[:12]:>12}" for a in attacks) + "   time (s)"
    lines.append(header)
    totals: Dict[str, List[int]] = defaultdict(lambda: [0, 0])  # robust, examples, over batches that have the phase
    for batch in sorted(phases):
        if "clean" not in phases[batch]:
            continue
        n = len(np.load(phases[batch]["clean"])["prediction"])
        rows = _batch_robust(phases[batch], attacks, labels[batch * size : batch * size + n])
        cells = [f"{int(robust.sum()):>{6 if name == 'clean' else 12}}" for name, robust, _ in rows]
        for name, robust, _ in rows:
            totals[name][0] += int(robust.sum())
            totals[name][1] += n
        times = " ".join(f"{t:.0f}" for _, _, t in rows)
        lines.append(f"{batch:>6} {n:>4} " + " ".join(cells).ljust(len(header) - 12) + "   " + times)
    summary = ", ".join(
        f"{name} {totals[name][0]}/{totals[name][1]}" for name in ["clean", *attacks] if totals[name][1]
    )
    lines.append(f"cumulative robust over the batches that have each phase: {summary}")
    return "\n".join(lines)


def worst_case(run: Path, labels: np.ndarray) -> Dict[int, bool]:
    """Example index -> robust after the whole cascade, for the batches of ``run`` that have finished every phase
    (the run's worst case, per example)."""
    phases = _phases(run)
    if not phases:
        return {}
    attacks, size = _layout(phases)
    out: Dict[int, bool] = {}
    for batch, done in sorted(phases.items()):
        if "clean" not in done or any(a not in done for a in attacks):
            continue
        n = len(np.load(done["clean"])["prediction"])
        robust = _batch_robust(done, attacks, labels[batch * size : batch * size + n])[-1][1]
        out.update({batch * size + i: bool(r) for i, r in enumerate(robust)})
    return out


def clean_votes(run: Path) -> Dict[int, Tuple[int, Optional[Tuple[int, ...]]]]:
    """Example index -> (clean majority prediction, its vote counts or ``None`` if the checkpoint has none), for the
    batches of ``run`` whose clean phase has finished."""
    phases = _phases(run)
    if not phases:
        return {}
    _, size = _layout(phases)
    out: Dict[int, Tuple[int, Optional[Tuple[int, ...]]]] = {}
    for batch, done in phases.items():
        if "clean" in done:
            data = np.load(done["clean"])
            counts = data["counts"].tolist() if "counts" in data.files else None
            for i, prediction in enumerate(data["prediction"].tolist()):
                out[batch * size + i] = (prediction, None if counts is None else tuple(counts[i]))
    return out


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the chance, if both runs were equally robust, of discordant pairs at least
    this uneven (a binomial test of ``only_a`` out of ``only_a + only_b`` at one half)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(run_a: Path, run_b: Path, labels: np.ndarray) -> str:
    """Per-example comparison of the worst cases of two runs, on the examples both have finished: how many each
    keeps, how many only one keeps, and the exact McNemar p-value of the difference (paired, so much tighter than
    comparing two accuracies on the same images as if they were independent)."""
    a, b = worst_case(run_a, labels), worst_case(run_b, labels)
    common = sorted(set(a) & set(b))
    if not common:
        return f"{run_a} vs {run_b}: no example has finished every phase in both runs"
    both = sum(a[i] and b[i] for i in common)
    only_a = sum(a[i] and not b[i] for i in common)
    only_b = sum(b[i] and not a[i] for i in common)
    n = len(common)
    clean_a, clean_b = clean_votes(run_a), clean_votes(run_b)
    clean = f"  clean predictions differ on {sum(clean_a[i][0] != clean_b[i][0] for i in common)}"
    if all(clean_a[i][1] is not None and clean_b[i][1] is not None for i in common):
        clean += f", clean vote counts on {sum(clean_a[i][1] != clean_b[i][1] for i in common)}"
    return (
        f"{run_a} vs {run_b}, on the {n} examples both have finished (indices {common[0]}-{common[-1]}):\n"
        f"  robust in A {both + only_a}/{n} ({100 * (both + only_a) / n:.1f} %), "
        f"in B {both + only_b}/{n} ({100 * (both + only_b) / n:.1f} %)\n"
        f"  robust in both {both}, only in A {only_a}, only in B {only_b}, in neither {n - both - only_a - only_b}\n"
        f"  exact McNemar p = {mcnemar_p(only_a, only_b):.3g} (two-sided)\n{clean}"
    )


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="run directories, or directories holding them")
    parser.add_argument("--compare", action="store_true", help="compare two run directories per example")
    args = parser.parse_args(argv)
    _, labels = load_fashion_mnist("test")
    if args.compare:
        if len(args.dirs) != 2 or not all((d / "partial").is_dir() for d in args.dirs):
            print("--compare takes two run directories (each with partial/)", file=sys.stderr)
            return 2
        print(compare(args.dirs[0], args.dirs[1], labels))
        return 0
    for path in args.dirs:
        runs = [path] if (path / "partial").is_dir() else sorted(p for p in path.iterdir() if (p / "partial").is_dir())
        if not runs:
            print(f"{path}: no run directory (with partial/) here", file=sys.stderr)
            return 2
        for run in runs:
            print(run_progress(run, labels))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
