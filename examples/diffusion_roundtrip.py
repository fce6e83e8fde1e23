# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Is the shipped diffusion model good enough to purify?

Diffuses clean Fashion-MNIST test images to ``t_star`` (default 100), denoises them back with deterministic DDIM,
and compares the shipped classifier's accuracy on the clean and on the round-tripped images (same images).

    python examples/diffusion_roundtrip.py --data auto --n 10000 --t-star 100 --steps 10 --seed 0
"""

import argparse
import json
import time

import torch

from art_purify.datasets import load_fashion_mnist
from art_purify.diffusion import DiffusionSchedule, diffuse_and_denoise
from art_purify.utils import machine_description, resolve_device
from art_purify.zoo import load_classifier, load_diffusion


@torch.no_grad()
def predict(model, x, batch_size=500):
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="auto", help="Fashion-MNIST source (default: Debian's files, else embedded)")
    parser.add_argument("--n", type=int, default=None, help="first N test images (default: all)")
    parser.add_argument("--t-star", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps (UNet calls)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    device = resolve_device(args.device)
    x, y = load_fashion_mnist("test", source=args.data, n=args.n)
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    classifier = load_classifier("fashion-mnist", device=device)
    unet, scheduler = load_diffusion("fashion-mnist", device=device)
    t0 = time.time()
    gen = torch.Generator(device=device).manual_seed(args.seed)
    purified = diffuse_and_denoise(unet, x, args.t_star, args.steps, DiffusionSchedule(scheduler), generator=gen)
    elapsed = time.time() - t0
    clean = (predict(classifier, x) == y).float().mean().item()
    after = (predict(classifier, purified) == y).float().mean().item()
    result = {
        "n": len(y),
        "t_star": args.t_star,
        "ddim_steps": args.steps,
        "seed": args.seed,
        "clean_accuracy": clean,
        "roundtrip_accuracy": after,
        "drop_points": 100 * (clean - after),
        "l2_per_image": (purified - x).flatten(1).norm(dim=1).mean().item(),
        "seconds": elapsed,
        "machine": machine_description(),
    }
    print(
        f"n={len(y)}  clean {100 * clean:.2f}%  after diffuse(t={args.t_star})+DDIM({args.steps}) "
        f"{100 * after:.2f}%  drop {result['drop_points']:.2f} points  ({elapsed:.0f}s)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
