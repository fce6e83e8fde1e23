# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Time and peak memory of heterogeneous diffusion purification and of one attack gradient in each mode.

For defence grids of 10, 20 and 40 UNet calls (t_high 200, t_low 100, jump 10; attack grid 10 = 2 UNet calls):
- ``purify``: one purification without gradients;
- ``exact_ckpt`` / ``exact_nockpt``: one loss gradient through the whole defence, with and without checkpointing;
- ``surrogate``: one loss gradient in surrogate mode (the defence's real output value + the 2-call surrogate's
  gradient), and ``surrogate_grad_only``: the surrogate process's own forward + backward (what the paper's attack
  runs);
- ``bpda``: one loss gradient in BPDA mode.

Each measurement runs in a fresh subprocess. Memory is taken on its first call: on CPU the growth of the
process's max RSS over its resident size just before that call, in a separate process started with
``MALLOC_MMAP_THRESHOLD_=65536`` so that freed blocks leave the RSS (glibc's heap otherwise keeps them and the
figure grows with fragmentation, not with live tensors); on CUDA, ``torch.cuda.max_memory_allocated`` minus the memory allocated before it. Times are the median
of ``--repeats`` later calls.

    python benchmarks/bench_diffusion.py --unet fashion-mnist --batch 16 --device cpu
    python benchmarks/bench_diffusion.py --unet cifar10 --batch 32 --device cuda   # 35.7 M-parameter DDPM shape
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

GRIDS = {10: 50, 20: 100, 40: 200}  # UNet calls of the defence -> grid from t_high = 200
MODES = ["purify", "exact_ckpt", "exact_nockpt", "surrogate", "surrogate_grad_only", "bpda"]

CIFAR10_DDPM = {  # architecture of the 35.7 M-parameter CIFAR-10 DDPM (Ho et al. 2020), random weights
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "block_out_channels": [128, 256, 256, 256],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(run, device, repeats: int):
    """Peak memory (bytes) of the first call of ``run`` and the times (s) of ``repeats`` later calls.

    Memory first, on the process's first call (it doubles as the warm-up): a warmed-up allocator keeps freed memory
    and would hide the growth of a later call.
    """
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _rss_bytes()
        run()
        peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return peak, times


def _child(args) -> dict:
    import torch

    from art_purify.defences.preprocessor import HeterogeneousDiffusionPurificationPyTorch, StraightThroughPyTorch
    from art_purify.models import SmallResNet, build_scheduler
    from art_purify.diffusion.purification import heterogeneous_purify

    torch.set_num_threads(args.threads) if args.threads else None
    device = torch.device(args.device)
    if args.unet == "fashion-mnist":
        from art_purify.zoo import load_classifier, load_diffusion

        unet, scheduler = load_diffusion("fashion-mnist", device=device)
        model = load_classifier("fashion-mnist", device=device)
        shape = (args.batch, 1, 28, 28)
    else:
        from diffusers import UNet2DModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            unet = UNet2DModel(**CIFAR10_DDPM).to(device).eval().requires_grad_(False)
            model = SmallResNet(in_channels=3).to(device).eval()
        scheduler = build_scheduler()
        shape = (args.batch, 3, 32, 32)
    grid = GRIDS[args.calls]
    mode = args.mode
    gradient = "surrogate" if mode == "surrogate" else "exact"
    purifier = HeterogeneousDiffusionPurificationPyTorch(
        unet,
        model,
        scheduler,
        t_high=200,
        t_low=100,
        jump=10,
        defence_grid=grid,
        attack_grid=10,
        gradient=gradient,
        gradient_checkpointing=(mode != "exact_nockpt"),
        seed=0,
        batch_size=args.batch,
        device_type=args.device,
    )
    defence = StraightThroughPyTorch(purifier) if mode == "bpda" else purifier
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.rand(shape, generator=gen, device=device)
    labels = torch.randint(0, 10, (shape[0],), generator=gen, device=device)

    def run():
        if mode == "purify":
            with torch.no_grad():
                defence.forward(x)
        elif mode == "surrogate_grad_only":
            xg = x.clone().requires_grad_(True)
            mask = purifier._prepare(x)
            out = heterogeneous_purify(
                unet, xg * 2 - 1, mask, purifier.schedule, 200, 100, 10, 10, purifier._generator(device), True
            )
            loss = torch.nn.functional.cross_entropy(model(((out + 1) / 2).clamp(0, 1)), labels)
            torch.autograd.grad(loss, xg)
        else:
            xg = x.clone().requires_grad_(True)
            out, _ = defence.forward(xg)
            loss = torch.nn.functional.cross_entropy(model(out), labels)
            torch.autograd.grad(loss, xg)
        if device.type == "cuda":
            torch.cuda.synchronize()

    peak, times = measure(run, device, args.repeats)
    return {
        "mode": mode,
        "calls": args.calls,
        "time_s": statistics.median(times) if times else None,
        "peak_mib": peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unet", choices=["fashion-mnist", "cifar10"], default="fashion-mnist")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--modes", nargs="+", default=MODES)
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument("--child-mode", dest="mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        args.calls = args.calls[0]
        print(json.dumps(_child(args)))
        return
    rows = []
    for calls in args.calls:
        for mode in args.modes:
            cmd = [
                sys.executable,
                __file__,
                "--unet",
                args.unet,
                "--batch",
                str(args.batch),
                "--device",
                args.device,
                "--repeats",
                str(args.repeats),
                "--threads",
                str(args.threads),
                "--calls",
                str(calls),
                "--child-mode",
                mode,
            ]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            if not args.device.startswith("cuda"):
                # glibc keeps freed heap blocks, so RSS overstates live memory after many allocations; a second
                # process with large blocks mmap-ed (returned on free) measures the peak, the first one the time.
                env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
                mem_cmd = cmd[: cmd.index("--repeats") + 1] + ["0"] + cmd[cmd.index("--repeats") + 2 :]
                out = subprocess.run(mem_cmd, check=True, capture_output=True, text=True, env=env).stdout
                row["peak_mib_default_malloc"] = row["peak_mib"]
                row["peak_mib"] = json.loads(out.splitlines()[-1])["peak_mib"]
            rows.append(row)
            print(f"{calls:>3} calls  {mode:<20} {row['time_s']:8.3f} s  {row['peak_mib']:9.1f} MiB", flush=True)
    by = {(r["calls"], r["mode"]): r for r in rows}
    print("\nratios (same run):")
    for calls in args.calls:
        ex, sur = by.get((calls, "exact_ckpt")), by.get((calls, "surrogate"))
        only, nock = by.get((calls, "surrogate_grad_only")), by.get((calls, "exact_nockpt"))
        if ex and sur:
            print(f"{calls:>3} calls: exact(ckpt) / surrogate time = {ex['time_s'] / sur['time_s']:.1f}x")
        if ex and only:
            print(
                f"{calls:>3} calls: exact(ckpt) / surrogate-gradient-only time = {ex['time_s'] / only['time_s']:.1f}x"
            )
        if nock and sur and sur["peak_mib"] > 0:
            print(
                f"{calls:>3} calls: exact(no ckpt) / surrogate peak memory = {nock['peak_mib'] / sur['peak_mib']:.1f}x"
            )
    lo, hi = by.get((min(args.calls), "exact_ckpt")), by.get((max(args.calls), "exact_ckpt"))
    if lo and hi and lo["peak_mib"] > 0:
        print(
            f"exact(ckpt) peak memory {max(args.calls)} vs {min(args.calls)} calls: {hi['peak_mib'] / lo['peak_mib']:.2f}x"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
