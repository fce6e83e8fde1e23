# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Step time of SAM, ImbSAM and SSE-SAM relative to plain SGD, measured in one interleaved run.

Batches come from Fashion-MNIST-LT (imbalance 100; the shipped classifier architecture, training mode, batch 128).
Variants, each one optimiser step on the same batch:

- ``sgd``: forward + backward + SGD step (the unit);
- ``sam``: SAM (two passes over the whole batch);
- ``imbsam``: ImbSAM (head once, tail twice);
- ``ssesam_phase1``: SSE-SAM before the switch (head and tail each at w and at their perturbed point);
- ``ssesam_phase2``: SSE-SAM after the switch (rho_head = 0: head once, tail twice);
- ``reference_4x``: the official code's cost, four forward + backward passes over the whole batch per step;
- ``*_batch``: ImbSAM and SSE-SAM with ``batchnorm="batch"`` closures (every pass forwards the whole batch, so
  BatchNorm normalises with the whole batch's statistics: exact for BatchNorm models, the default there; the passes
  at w share one forward, so ImbSAM forwards the batch twice and backpropagates it three times). The
  other variants use ``batchnorm="group"`` (each group forwarded alone: the fast path).

Every repeat times each variant once, in turn, so that machine noise hits all of them alike; the figures are the
medians over repeats and their ratios to ``sgd``. Batches without Fashion-MNIST's IDX files: ``--data synthetic``
draws labels with the long-tailed class frequencies and random images (only the head/tail split matters for time).

    python benchmarks/bench_sam.py --data /usr/share/datasets/fashion-mnist --repeats 30 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch


def _batches(data: str, batch: int, count: int, seed: int):
    from art_purify.datasets import long_tailed, long_tailed_counts

    gen = torch.Generator().manual_seed(seed)
    if data == "synthetic":
        counts = long_tailed_counts(6000, 10, 100.0)
        probs = torch.as_tensor(counts / counts.sum(), dtype=torch.float64)
        ys = [torch.multinomial(probs, batch, replacement=True, generator=gen) for _ in range(count)]
        return [(torch.rand(batch, 1, 28, 28, generator=gen), y) for y in ys], counts
    from art_purify.datasets import load_fashion_mnist

    x, y = load_fashion_mnist("train", source=data)
    x_lt, y_lt, counts = long_tailed(x, y, imbalance_factor=100.0, seed=seed)
    out = []
    for _ in range(count):
        idx = torch.randperm(len(y_lt), generator=gen)[:batch].numpy()
        out.append((torch.as_tensor(x_lt[idx]), torch.as_tensor(y_lt[idx]).long()))
    return out, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic", help="IDX directory of Fashion-MNIST, or 'synthetic'.")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from art_purify.models import SmallResNet
    from art_purify.optim import SAM, SSESAM, ImbSAM, make_closure

    batches, counts = _batches(args.data, args.batch, args.warmup + args.repeats, args.seed)
    eta = 0.2 * counts.max()
    loss_fn = torch.nn.CrossEntropyLoss()
    sgd = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True}

    def model():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            return SmallResNet().train()

    names = (
        "sgd",
        "sam",
        "imbsam",
        "ssesam_phase1",
        "ssesam_phase2",
        "reference_4x",
        "imbsam_batch",
        "ssesam_phase1_batch",
        "ssesam_phase2_batch",
    )
    models = {name: model() for name in names}
    opts = {
        "sgd": torch.optim.SGD(models["sgd"].parameters(), **sgd),
        "sam": SAM(models["sam"].parameters(), torch.optim.SGD, rho=0.05, **sgd),
        "imbsam": ImbSAM(models["imbsam"].parameters(), torch.optim.SGD, class_counts=counts, eta=eta, rho=0.1, **sgd),
        "ssesam_phase1": SSESAM(
            models["ssesam_phase1"].parameters(),
            torch.optim.SGD,
            class_counts=counts,
            eta=eta,
            gamma=0.7,
            epochs=10,
            **sgd,
        ),
        "ssesam_phase2": SSESAM(
            models["ssesam_phase2"].parameters(),
            torch.optim.SGD,
            class_counts=counts,
            eta=eta,
            gamma=0.0,
            epochs=10,
            **sgd,
        ),
        "reference_4x": torch.optim.SGD(models["reference_4x"].parameters(), **sgd),
        "imbsam_batch": ImbSAM(
            models["imbsam_batch"].parameters(), torch.optim.SGD, class_counts=counts, eta=eta, rho=0.1, **sgd
        ),
        "ssesam_phase1_batch": SSESAM(
            models["ssesam_phase1_batch"].parameters(),
            torch.optim.SGD,
            class_counts=counts,
            eta=eta,
            gamma=0.7,
            epochs=10,
            **sgd,
        ),
        "ssesam_phase2_batch": SSESAM(
            models["ssesam_phase2_batch"].parameters(),
            torch.optim.SGD,
            class_counts=counts,
            eta=eta,
            gamma=0.0,
            epochs=10,
            **sgd,
        ),
    }
    assert opts["ssesam_phase1"].phase == 1 and opts["ssesam_phase2"].phase == 2

    def step(name, x, y):
        m, opt = models[name], opts[name]
        if name in ("sgd", "reference_4x"):
            for _ in range(4 if name == "reference_4x" else 1):
                opt.zero_grad(set_to_none=True)
                loss_fn(m(x), y).backward()
            opt.step()
        else:
            mode = "batch" if name.endswith("_batch") else "group"
            opt.step(make_closure(m, loss_fn, x, y, batchnorm=mode), targets=y)

    times = {name: [] for name in models}
    tail_share = []
    for r, (x, y) in enumerate(batches):
        tail_share.append(float(np.isin(y.numpy(), opts["imbsam"].tail_classes).mean()))
        for name in models:
            t0 = time.perf_counter()
            step(name, x, y)
            if r >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(v) for name, v in times.items()}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "data": args.data,
        "batch": args.batch,
        "repeats": args.repeats,
        "tail_classes": opts["imbsam"].tail_classes,
        "eta": eta,
        "mean_tail_share": statistics.mean(tail_share[args.warmup :]),
        "median_s": median,
        "ratio_to_sgd": {name: median[name] / median["sgd"] for name in median},
    }
    print(
        f"batch {args.batch}, {args.repeats} repeats, tail classes {result['tail_classes']} (eta {eta:g}), "
        f"mean tail share {100 * result['mean_tail_share']:.1f}%"
    )
    print(f"{'variant':<22}{'median step (ms)':>18}{'x SGD':>8}")
    for name in median:
        print(f"{name:<22}{1000 * median[name]:>18.1f}{result['ratio_to_sgd'][name]:>8.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
