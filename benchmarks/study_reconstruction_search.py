# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""What each knob of the reconstruction search (PurSAMERE) costs: clean accuracy, robust accuracy under an exact-
gradient attack and time, on the shipped Fashion-MNIST models, one knob changed at a time from a base setting.

For every setting: clean accuracy on the first ``--n-clean`` test images and robust accuracy on the first
``--n-robust`` under APGD-CE with the exact gradient through the whole unrolled search (``--max-iter`` iterations,
l_inf eps ``--eps``, step eps/4), through :func:`art_purify.evaluation.evaluate` (no votes or EOT: the defence is
deterministic). One attack on a subset is an upper bound on the robust accuracy; the study ranks settings, and
``docs/results.md`` gives the worst case over the whole attack suite for the chosen ones.

Each setting is written to ``OUT/<name>.json`` as soon as it is done, and settings already there are skipped, so an
interrupted study continues where it stopped; ``OUT/summary.md`` is the table so far.

    python benchmarks/study_reconstruction_search.py --out runs/study --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: The base setting every other one changes one knob of.
BASE = {"sigma": 0.25, "nb_noise": 2, "max_iter": 5, "step_size": 0.03, "radius": 0.25, "rho": 0.05}
#: name -> the knobs changed from BASE.
SETTINGS = {
    "base": {},
    "rho=0": {"rho": 0.0},
    "rho=0.2": {"rho": 0.2},
    "sigma=0.1": {"sigma": 0.1},
    "sigma=0.5": {"sigma": 0.5},
    "sigma=1.0": {"sigma": 1.0},
    "nb_noise=1": {"nb_noise": 1},
    "nb_noise=4": {"nb_noise": 4},
    "max_iter=2": {"max_iter": 2},
    "max_iter=10": {"max_iter": 10},
    "radius=0.1": {"radius": 0.1},
    "radius=0.4": {"radius": 0.4},
    # the knobs that helped, together
    "sigma=0.5,max_iter=10": {"sigma": 0.5, "max_iter": 10},
}


def run_setting(name: str, args: argparse.Namespace, models) -> dict:
    """Clean and robust accuracy of one setting."""
    from art_purify.datasets import CLASSES, load_fashion_mnist
    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
    from art_purify.evaluation import AttackSettings, as_art_classifier, evaluate

    net, unet, scheduler = models
    params = {**BASE, **SETTINGS[name]}
    gradient = {"gradient": args.gradient, "unrolled_steps": args.unrolled_steps}
    defence = ReconstructionSearchPyTorch(
        unet, scheduler, device_type="cpu", batch_size=args.batch_size, **params, **gradient
    )
    classifier = as_art_classifier(net, nb_classes=len(CLASSES), device="cpu", preprocessing_defences=[defence])
    x, y = load_fashion_mnist("test", source="embedded")
    t0 = time.time()
    clean = float(
        (classifier.predict(x[: args.n_clean], batch_size=args.batch_size).argmax(1) == y[: args.n_clean]).mean()
    )
    clean_s = time.time() - t0
    settings = AttackSettings(eps=args.eps, max_iter=args.max_iter, batch_size=args.batch_size)
    report = evaluate(
        classifier, x[: args.n_robust], y[: args.n_robust], ["apgd-ce"], settings, seed=0, sanity=False, verbose=False
    )
    cosine = None
    if args.gradient != "exact":  # how close the attacker's gradient is to the exact one, on the first 8 images
        onehot = np.eye(len(CLASSES), dtype=np.float32)[y[:8]]
        approx = classifier.loss_gradient(x[:8], onehot).reshape(8, -1)
        defence.set_params(gradient="exact")
        exact = classifier.loss_gradient(x[:8], onehot).reshape(8, -1)
        defence.set_params(gradient=args.gradient)
        cosine = float(
            np.mean((approx * exact).sum(1) / np.linalg.norm(approx, axis=1) / np.linalg.norm(exact, axis=1))
        )
    return {
        "setting": name,
        "params": params,
        "gradient": gradient,
        "mean_cosine_to_exact_gradient": cosine,
        "clean_accuracy": clean,
        "n_clean": args.n_clean,
        "clean_on_robust_subset": report.clean_accuracy,
        "robust_accuracy": report.robust_accuracy,
        "n_robust": args.n_robust,
        "attack": f"APGD-CE ({args.gradient} gradient), {args.max_iter} iterations, eps {args.eps}",
        "purify_s_per_image": clean_s / args.n_clean,
        "attack_s": report.attacks["apgd-ce"].time_s,
    }


def summary(out: Path) -> str:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    order = {name: i for i, name in enumerate(SETTINGS)}
    rows.sort(key=lambda r: order.get(r["setting"], len(order)))
    lines = [
        "| setting | clean | robust (APGD-CE) | purify s/image | attack s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {100 * r['clean_accuracy']:.1f} % (n={r['n_clean']}) | "
            f"{100 * r['robust_accuracy']:.1f} % (n={r['n_robust']}) | {r['purify_s_per_image']:.2f} | "
            f"{r['attack_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/study"))
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--n-clean", type=int, default=128)
    parser.add_argument("--n-robust", type=int, default=32)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--gradient", default="exact", help="the attacker's gradient mode (exact, truncated, bpda)")
    parser.add_argument("--unrolled-steps", type=int, default=1, help="steps unrolled by --gradient truncated")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = parser.parse_args()

    import torch

    from art_purify.zoo import load_classifier, load_diffusion

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    models = (load_classifier("fashion-mnist", device="cpu"), *load_diffusion("fashion-mnist", device="cpu"))
    for name in args.settings:
        path = args.out / f"{name}.json"
        if path.exists():
            continue
        result = run_setting(name, args, models)
        path.write_text(json.dumps(result, indent=2), encoding="utf-8")
        (args.out / "summary.md").write_text(summary(args.out), encoding="utf-8")
        print(json.dumps(result), flush=True)
    print(summary(args.out))


if __name__ == "__main__":
    main()
