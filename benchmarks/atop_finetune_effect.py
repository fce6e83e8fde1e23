# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Does AToP's fine-tuning change what matters? The shipped pre-trained-only and fine-tuned purifiers (or generators
given as safetensors files), each behind RT2 and the shipped classifier, on the same first N test images with the same
defence seeds: clean accuracy, the transfer FGSM they were trained with (made against the classifier alone), and
PGD-EOT with exact gradients through generator and transform; several seeds, so that the spread over the defence's
draws and votes (the vote noise) is measured next to the difference.

    python benchmarks/atop_finetune_effect.py --n 256 --seeds 0 1 2 --max-iter 10 --eot 4 --votes 3

Prints one line per generator and seed and writes them as JSON lines to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--eot", type=int, default=4)
    parser.add_argument("--votes", type=int, default=3)
    parser.add_argument("--transform", default="rt2")
    parser.add_argument("--generators", nargs="*", help="safetensors files (default: the two shipped ones)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON-lines file for the results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from art_purify.datasets import load_fashion_mnist
    from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
    from art_purify.evaluation import AttackSettings, evaluate
    from art_purify.models import as_art_classifier
    from art_purify.zoo import load_atop, load_atop_weights, load_classifier

    x, y = load_fashion_mnist("test", source="embedded")
    x, y = x[: args.n], y[: args.n]
    model = load_classifier("fashion-mnist")
    if args.generators:
        config = load_atop("fashion-mnist").config
        generators = {path: load_atop_weights(path, config) for path in args.generators}
    else:
        generators = {
            "pre-trained only": load_atop("fashion-mnist", pretrained=True),
            "fine-tuned (AToP)": load_atop("fashion-mnist"),
        }
    for seed in args.seeds:
        for name, generator in generators.items():
            purifier = AToPPurificationPyTorch(
                generator, RandomMaskingPyTorch.preset(args.transform), device_type="cpu"
            )
            classifier = as_art_classifier(model, device="cpu", preprocessing_defences=[purifier])
            t0 = time.time()
            report = evaluate(
                classifier, x, y, "pgd,transfer-fgsm", AttackSettings(eps=0.1, max_iter=args.max_iter),
                eot=args.eot, votes=args.votes, seed=seed, sanity=False, verbose=False,
            )  # fmt: skip
            row = {
                "generator": name,
                "seed": seed,
                "clean": report.clean_accuracy,
                **{attack: result.robust_accuracy for attack, result in report.attacks.items()},
                "seconds": round(time.time() - t0, 1),
            }
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
