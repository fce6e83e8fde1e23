# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Fashion-MNIST-LT (imbalance 100): SGD, SAM, ImbSAM and SSE-SAM over several seeds, and a results table.

Trains every missing run (``OUT/<optimizer>-s<seed>``, the layout of ``art-purify train-long-tailed``; a run with a
``checkpoint.pt`` but no ``model_card.json`` is resumed), then prints test accuracy overall and on the many / medium /
few-shot classes as mean and sample standard deviation over the seeds, in Markdown.

    python examples/long_tailed.py --data /usr/share/datasets/fashion-mnist --seeds 0 1 2 --epochs 10 --out runs/lt
    python examples/long_tailed.py --out runs/lt --table-only        # only aggregate finished runs
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

OPTIMIZERS = ("sgd", "sam", "imbsam", "ssesam")
NAMES = {"sgd": "SGD", "sam": "SAM", "imbsam": "ImbSAM", "ssesam": "SSE-SAM"}
COLUMNS = ("accuracy", "many_accuracy", "medium_accuracy", "few_accuracy")


def train_missing(args) -> None:
    from art_purify.datasets import load_fashion_mnist
    from art_purify.engine import CHECKPOINT_NAME, has_checkpoint
    from art_purify.training.long_tailed import LongTailedTrainConfig, train_long_tailed

    x, y = load_fashion_mnist("train", source=args.data)
    x_test, y_test = load_fashion_mnist("test", source=args.data)
    for seed in args.seeds:
        for name in args.optimizers:
            out = args.out / f"{name}-s{seed}"
            if (out / "model_card.json").is_file():
                continue
            config = LongTailedTrainConfig(optimizer=name, epochs=args.epochs, seed=seed)
            command = (
                f"python examples/long_tailed.py --data {args.data} --seeds {seed} --optimizers {name} "
                f"--epochs {args.epochs} --out {args.out}"
            )
            train_long_tailed(
                x, y, out, config, x_test, y_test, resume=has_checkpoint(out / CHECKPOINT_NAME), command=command
            )


def table(out: Path, optimizers, seeds) -> str:
    lines = [
        "| optimiser | seeds | overall | many | medium | few | train time per run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in optimizers:
        cards = [json.loads(p.read_text()) for s in seeds if (p := out / f"{name}-s{s}" / "model_card.json").is_file()]
        if not cards:
            continue
        cells = []
        for column in COLUMNS:
            values = [100 * c["metrics"]["test"][column] for c in cards]
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.mean(values):.2f} ± {spread:.2f}")
        minutes = statistics.mean(c["wall_time_s"] for c in cards) / 60
        lines.append(f"| {NAMES[name]} | {len(cards)} | " + " | ".join(cells) + f" | {minutes:.1f} min |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX directory.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/lt"))
    parser.add_argument("--table-only", action="store_true", help="Do not train; aggregate the finished runs.")
    args = parser.parse_args()
    if not args.table_only:
        train_missing(args)
    print(table(args.out, args.optimizers, args.seeds))


if __name__ == "__main__":
    main()
