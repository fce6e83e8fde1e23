# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Time and peak memory of the reconstruction search (PurSAMERE) on the shipped Fashion-MNIST UNet, against the
number of search steps and of noise draws:

- ``purify``: one search without gradients (what ``predict`` runs);
- ``exact_ckpt`` / ``exact_nockpt``: one loss gradient through the whole unrolled search, with and without per-step
  recomputation (``gradient_checkpointing``);
- ``truncated``: one loss gradient through the last search step only (``gradient="truncated"``, ``unrolled_steps=1``);
- ``bpda``: one loss gradient with the identity gradient (a search without its graph).

Each measurement runs in a fresh subprocess; memory is measured as in ``bench_diffusion.py`` (the growth of the max
RSS over the resident size before the first call, with ``MALLOC_MMAP_THRESHOLD_=65536``; on CUDA the peak allocated
memory). Times are the median of ``--repeats`` later calls.

    python benchmarks/bench_reconstruction_search.py --batch 8 --steps 5 10 20 --nb-noise 4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_diffusion import measure  # noqa: E402  pylint: disable=wrong-import-position

MODES = ["purify", "exact_ckpt", "exact_nockpt", "truncated", "bpda"]


def _child(args) -> dict:
    import torch

    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
    from art_purify.zoo import load_classifier, load_diffusion

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    unet, scheduler = load_diffusion("fashion-mnist", device=device)
    model = load_classifier("fashion-mnist", device=device)
    defence = ReconstructionSearchPyTorch(
        unet, scheduler, max_iter=args.steps[0], nb_noise=args.nb_noise[0], batch_size=args.batch,
        gradient={"bpda": "bpda", "truncated": "truncated"}.get(args.mode, "exact"), unrolled_steps=1,
        gradient_checkpointing=args.mode != "exact_nockpt",
        device_type="gpu" if device.type == "cuda" else "cpu",
    )  # fmt: skip
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.rand((args.batch, 1, 28, 28), generator=gen, device=device)
    labels = torch.randint(0, 10, (args.batch,), generator=gen, device=device)

    def run():
        if args.mode == "purify":
            with torch.no_grad():
                defence.forward(x)
        else:
            xg = x.clone().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(defence.forward(xg)[0]), labels)
            torch.autograd.grad(loss, xg)
        if device.type == "cuda":
            torch.cuda.synchronize()

    peak, times = measure(run, device, args.repeats)
    return {"mode": args.mode, "steps": args.steps[0], "nb_noise": args.nb_noise[0],
            "time_s": statistics.median(times) if times else None, "peak_mib": peak / 2**20}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--nb-noise", type=int, nargs="+", default=[4])
    parser.add_argument("--modes", nargs="+", default=MODES)
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument("--child-mode", dest="mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(_child(args)))
        return
    rows = []
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    for nb_noise in args.nb_noise:
        for steps in args.steps:
            for mode in args.modes:
                cmd = [sys.executable, __file__, "--batch", str(args.batch), "--device", args.device, "--repeats",
                       str(args.repeats), "--threads", str(args.threads), "--steps", str(steps), "--nb-noise",
                       str(nb_noise), "--child-mode", mode]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
                row = json.loads(out.strip().splitlines()[-1])
                rows.append(row)
                print(f"steps {steps:2d}  noise {nb_noise}  {mode:13s} {row['time_s']:8.3f} s  {row['peak_mib']:9.1f} MiB",
                      flush=True)  # fmt: skip
    by = {(r["mode"], r["steps"], r["nb_noise"]): r for r in rows}
    print("\nratios (same run):")
    for nb_noise in args.nb_noise:
        lo, hi = min(args.steps), max(args.steps)
        if ("exact_ckpt", lo, nb_noise) in by and ("exact_ckpt", hi, nb_noise) in by:
            growth = by[("exact_ckpt", hi, nb_noise)]["peak_mib"] / max(
                by[("exact_ckpt", lo, nb_noise)]["peak_mib"], 1e-9
            )
            print(f"  exact (recomputed steps) peak memory, {hi} vs {lo} steps, noise {nb_noise}: {growth:.2f}x")
        if ("exact_nockpt", hi, nb_noise) in by and ("exact_ckpt", hi, nb_noise) in by:
            ratio = by[("exact_nockpt", hi, nb_noise)]["peak_mib"] / max(
                by[("exact_ckpt", hi, nb_noise)]["peak_mib"], 1e-9
            )
            print(f"  exact without / with recomputation, peak memory at {hi} steps: {ratio:.2f}x")
        if ("exact_ckpt", hi, nb_noise) in by and ("purify", hi, nb_noise) in by:
            ratio = by[("exact_ckpt", hi, nb_noise)]["time_s"] / by[("purify", hi, nb_noise)]["time_s"]
            print(f"  exact gradient / purification time at {hi} steps: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
