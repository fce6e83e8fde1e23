# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
Throughput of PGD-EOT against the heterogeneous defence on a CIFAR-10-sized UNet (the 35.7 M-parameter DDPM
architecture, random weights), per speed option, and the scaling of a sharded evaluation from 1 to N ranks.

Part 1, ``options``: in one process (so that the options are compared as ratios measured together), for each
option (``float32``, ``bfloat16``, ``float16``, ``channels_last``, ``compile``, or ``+``-joined combinations), ART's
loss gradient through the defence, ``--iters`` times (one PGD iteration each: the rest of an iteration is a few
element-wise operations) on ``--batch`` images with ``--eot`` EOT samples per gradient, surrogate gradient (the
paper's attack) unless ``--gradient exact``, after one warm-up gradient; then the suite's ``pgd`` attack itself
(``pgd_generate_s``: the same iterations plus the two predictions ART makes at the end to log its success rate). The
throughput is images x attack iterations per second; the FLOPs of one attack iteration on one image (counted by
``torch.utils.flop_counter.FlopCounterMode``: every executed matrix product and convolution, the backward pass and
the surrogate's recomputation included) give the FLOP rate and, with ``--peak-tflops``, the fraction of the
device's peak. The projection is the paper's protocol (PGD-EOT 200 x 20, majority vote over 20 purifications of the
clean and of the adversarial images) on ``--project`` images: the measured time per image, iteration and EOT sample
scaled up, plus the measured time of one purification per vote. Each row also has the memory growth of the first
gradient (measured as in ``bench_diffusion.py``); an option that runs out of CUDA memory is recorded as such and the
next one runs.

Part 2, ``ranks``: ``evaluate_distributed`` (gloo on the CPU, NCCL on GPUs) of PGD-EOT on ``--n`` images in batches
of ``--batch``, spawned with ``torch.multiprocessing`` on 1 and on ``--ranks`` ranks (``--threads`` threads each),
timed on rank 0 from the start of the evaluation (models loaded, process group up) to the merged report.

    python benchmarks/bench_scale.py --device cpu --threads 1 --batch 2 --eot 2 --iters 1 \\
        --options float32,bfloat16,channels_last --ranks 2 --n 4
    python benchmarks/bench_scale.py --device cuda --batch 128 --eot 20 --iters 2 \\
        --peak-tflops 989 --peak-tflops-float32 495 \\
        --options float32,bfloat16,bfloat16+channels_last,bfloat16+channels_last+compile --ranks 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_diffusion import CIFAR10_DDPM, measure  # noqa: E402  pylint: disable=wrong-import-position


def _models(device):
    import torch
    from diffusers import UNet2DModel

    from art_purify.models import SmallResNet, build_scheduler

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(**CIFAR10_DDPM).to(device).eval().requires_grad_(False)
        model = SmallResNet(in_channels=3).to(device).eval()
    return unet, model, build_scheduler()


def _option_kwargs(option: str) -> dict:
    kwargs: dict = {}
    for part in option.split("+"):
        if part in ("float32", "bfloat16", "float16"):
            kwargs["precision"] = part
        elif part == "channels_last":
            kwargs["channels_last"] = True
        elif part == "compile":
            kwargs["compile_unet"] = True
        else:
            raise SystemExit(f"unknown option {part!r}")
    return kwargs


def _classifier(unet, model, scheduler, device, batch, eot, gradient, **options):
    from art_purify.evaluation import as_art_classifier, build_defence

    defence = build_defence(
        "heterogeneous",
        unet,
        scheduler,
        model,
        gradient=gradient,
        nb_eot=eot,
        seed=0,
        batch_size=batch * eot,
        device_type="gpu" if device.type == "cuda" else "cpu",
        **options,
    )
    classifier = as_art_classifier(
        model, input_shape=(3, 32, 32), nb_classes=10, device=device, preprocessing_defences=[defence]
    )
    return classifier, defence


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def options_part(args) -> list:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(args.device)
    models = _models(device)
    unet = models[0]
    gen = np.random.default_rng(0)
    x = gen.random((args.batch, 3, 32, 32), dtype=np.float32)
    y = gen.integers(0, 10, args.batch)
    onehot = np.eye(10, dtype=np.float32)[y]
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            unet(torch.as_tensor(x[:1], device=device) * 2 - 1, torch.full((1,), 100, device=device))
        unet_flops = counter.get_total_flops()
    # one attack iteration on one image, EOT included: the same operations under every option, so counted once, in
    # float32 and eagerly (a compiled UNet would hide its operations from the counter)
    classifier, _ = _classifier(*models, device, 1, args.eot, args.gradient)
    counter = FlopCounterMode(display=False)
    with counter:
        classifier.loss_gradient(x[:1], onehot[:1])
    flops = (unet_flops, counter.get_total_flops())
    rows = []
    for option in args.options.split(","):
        try:
            rows.append(_option_row(option, args, device, models, (x, y, onehot), flops))
        except torch.cuda.OutOfMemoryError as err:  # record it and go on with the next option
            rows.append({"option": option, "error": f"out of memory: {str(err).splitlines()[0]}"})
        torch.cuda.empty_cache()
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _option_row(option, args, device, models, data, flops) -> dict:  # pylint: disable=too-many-locals
    """One option's figures (see the module docstring)."""
    from art_purify.evaluation import AttackSettings, build_attack

    x, y, onehot = data
    unet_flops, iteration_flops = flops
    settings = AttackSettings(eps=8 / 255, max_iter=args.iters, batch_size=args.batch)
    classifier, defence = _classifier(*models, device, args.batch, args.eot, args.gradient, **_option_kwargs(option))
    # what one PGD iteration costs: ART's loss gradient through the defence (it returns numpy, so CUDA has finished);
    # the first call is the warm-up (and the compilation, for compile) and gives the peak memory
    t0 = time.perf_counter()
    peak_memory, times = measure(lambda: classifier.loss_gradient(x, onehot), device, args.iters)
    seconds = sum(times)
    warm = time.perf_counter() - t0 - seconds
    attack = build_attack("pgd", classifier, settings, verbose=False)
    t0 = time.perf_counter()
    attack.generate(x, y=y)
    _sync(device)
    attack_s = time.perf_counter() - t0  # the iterations, plus ART's success-rate predictions at the end
    defence.set_params(nb_eot=1)
    t0 = time.perf_counter()
    classifier.predict(x, batch_size=args.batch)
    _sync(device)
    vote = (time.perf_counter() - t0) / args.batch  # one purification of one image
    per_sample = seconds / (args.batch * args.iters * args.eot)
    low = "bfloat16" in option or "float16" in option
    peak = args.peak_tflops if low else args.peak_tflops_float32
    project = args.project * (200 * 20 * per_sample + 2 * 20 * vote)
    rate = iteration_flops * args.batch * args.iters / seconds
    return {
        "option": option,
        "batch": args.batch,
        "eot": args.eot,
        "images_x_iters_per_s": args.batch * args.iters / seconds,
        "gradient_s": seconds,
        "pgd_generate_s": attack_s,
        "warmup_s": warm,
        "vote_s_per_image": vote,
        "unet_gflops_per_call": unet_flops / 1e9,
        "iteration_gflops_per_image": iteration_flops / 1e9,
        "achieved_tflops": rate / 1e12,
        "peak_fraction": rate / (peak * 1e12) if peak else None,
        "peak_memory_mib": peak_memory / 2**20,
        "projected_paper_protocol_h": project / 3600,
    }


def _rank(rank, world, args, init, results):  # pylint: disable=too-many-locals
    import numpy as np
    import torch
    import torch.distributed as dist

    from art_purify.evaluation import AttackSettings, evaluate_distributed

    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        unet, model, scheduler = _models(device)
        classifier, _ = _classifier(unet, model, scheduler, device, args.batch, args.eot, args.gradient)
        gen = np.random.default_rng(0)
        x = gen.random((args.n, 3, 32, 32), dtype=np.float32)
        y = gen.integers(0, 10, args.n)
        settings = AttackSettings(eps=8 / 255, max_iter=args.iters, batch_size=args.batch)
        dist.barrier()
        t0 = time.perf_counter()
        report = evaluate_distributed(
            classifier, x, y, "pgd", settings, eot=args.eot, votes=1, sanity=False, verbose=False
        )
        if report is not None:
            with open(results, "w", encoding="utf-8") as out:
                json.dump({"seconds": time.perf_counter() - t0, "robust": report.robust}, out)
    finally:
        dist.destroy_process_group()


def ranks_part(args) -> list:
    import tempfile

    import torch.multiprocessing as mp

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        first = None
        for world in sorted({1, args.ranks}):
            results = os.path.join(tmp, f"w{world}.json")
            mp.spawn(_rank, args=(world, args, os.path.join(tmp, f"init{world}"), results), nprocs=world)
            with open(results, encoding="utf-8") as handle:
                done = json.load(handle)
            first = first or done
            rows.append(
                {
                    "ranks": world,
                    "threads_per_rank": args.threads,
                    "seconds": done["seconds"],
                    "images_x_iters_per_s": args.n * args.iters / done["seconds"],
                    "speed_up": first["seconds"] / done["seconds"],
                    "efficiency": first["seconds"] / done["seconds"] / world,
                    "same_outcomes_as_1_rank": done["robust"] == first["robust"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (per rank in part 2)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--eot", type=int, default=2)
    parser.add_argument("--iters", type=int, default=1)
    parser.add_argument("--gradient", default="surrogate", choices=["surrogate", "exact"])
    parser.add_argument("--options", default="float32,bfloat16,channels_last")
    parser.add_argument("--peak-tflops", type=float, help="the device's 16-bit peak (TFLOP/s; H100 SXM: 989)")
    parser.add_argument(
        "--peak-tflops-float32", type=float, help="its float32 peak, for the float32 options (H100 SXM TF32: 495)"
    )
    parser.add_argument("--project", type=int, default=512, help="images of the projected paper protocol")
    parser.add_argument("--ranks", type=int, default=2, help="ranks of part 2 (0: skip it)")
    parser.add_argument("--n", type=int, default=4, help="images of part 2")
    parser.add_argument("--out", help="write the figures here as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    result = {"args": vars(args), "torch": torch.__version__, "options": options_part(args) if args.options else []}
    if args.ranks:
        result["ranks"] = ranks_part(args)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()
