# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Progress of long ``--cascade`` evaluations from their checkpoints, before their reports exist.

    python benchmarks/campaign_progress.py campaign/results15            # every run directory under it
    python benchmarks/campaign_progress.py campaign/results15/search     # one run

For each run: the batches whose phases are done, the cumulative robust count after each attack of the cascade (an
example counts as robust after an attack when it was robust before and the attack, if it ran on it, did not break
it: the report's majority figure), and the time each attack took. Only finished (batch, attack) pairs are read; the
figures are partial until every batch has every phase. The labels are those of the embedded Fashion-MNIST test
images, in order (the evaluations of docs/results.md use the first N of them).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np

from art_purify.datasets import load_fashion_mnist
from art_purify.evaluation.runner import cascade_order

_FILE = re.compile(r"b(\d{5})-(.+)\.npz$")


def run_progress(run: Path, labels: np.ndarray) -> str:
    """A text table of the finished phases of the run in directory ``run`` (``run/partial/b*.npz``)."""
    phases: Dict[int, Dict[str, Path]] = defaultdict(dict)
    for path in sorted((run / "partial").glob("b*.npz")):
        match = _FILE.search(path.name)
        if match:
            phases[int(match.group(1))][match.group(2)] = path
    if not phases:
        return f"{run}: no finished phase yet"
    attacks = cascade_order(sorted({p for b in phases.values() for p in b if p != "clean"}))
    lines = [f"{run}: {len(phases)} batch(es) started"]
    header = f"{'batch':>6} {'n':>4} {'clean':>6} " + " ".join(f"{a[:12]:>12}" for a in attacks) + "   time (s)"
    lines.append(header)
    size = len(np.load(phases[min(phases)]["clean"])["prediction"]) if "clean" in phases[min(phases)] else 0
    # every batch has this size but the last (batch b starts at example b * size)
    totals: Dict[str, List[int]] = defaultdict(lambda: [0, 0])  # robust, examples, over batches that have the phase
    for batch in sorted(phases):
        done = phases[batch]
        if "clean" not in done:
            continue
        clean = np.load(done["clean"])
        n = len(clean["prediction"])
        y = labels[batch * size : batch * size + n]
        robust = clean["prediction"] == y
        cells, times = [f"{int(robust.sum()):>6}"], [f"{float(clean['time_s']):.0f}"]
        totals["clean"][0] += int(robust.sum())
        totals["clean"][1] += n
        for name in attacks:
            if name not in done:
                break
            data = np.load(done[name])
            attacked = data["attacked"] if "attacked" in data.files else np.ones(n, bool)
            robust = robust & ((data["prediction"] == y) | ~attacked)
            cells.append(f"{int(robust.sum()):>12}")
            times.append(f"{float(data['time_s']):.0f}")
            totals[name][0] += int(robust.sum())
            totals[name][1] += n
        lines.append(f"{batch:>6} {n:>4} " + " ".join(cells).ljust(len(header) - 12) + "   " + " ".join(times))
    summary = ", ".join(
        f"{name} {totals[name][0]}/{totals[name][1]}" for name in ["clean", *attacks] if totals[name][1]
    )
    lines.append(f"cumulative robust over the batches that have each phase: {summary}")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="run directories, or directories holding them")
    args = parser.parse_args(argv)
    _, labels = load_fashion_mnist("test")
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
