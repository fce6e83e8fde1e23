# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The adversarial-training baseline of the AToP comparison (issue 16): ART's own ``AdversarialTrainerMadryPGD``
fine-tunes the shipped classifier (the same architecture and starting point the AToP purifier was trained for) with
l_inf PGD at eps 0.1, then the evaluation suite attacks it on the same first N test images as
``benchmarks/results_atop.sh``.

    python benchmarks/madry_baseline.py --out runs/results16/madry --epochs 1 --n-train 60000 --threads 1
    python benchmarks/madry_baseline.py --out runs/results16/madry --evaluate-only     # attack a trained one again
    python benchmarks/madry_baseline.py --out runs/results16/madry --evaluate-only --per-attack \
        --attacks pgd,pgd-l2,apgd-dlr,transfer-fgsm   # each attack on every image (report-each.json)

``transfer-fgsm`` here is FGSM on this classifier itself (it has no preprocessing to strip), i.e. the white-box
FGSM; for AToP the same name is FGSM on the classifier without the purifier, the attack AToP trains with. With
``--per-attack`` the script also writes ``transfer.json``: the accuracy on FGSM examples made on the shipped
(undefended) classifier, which is how AToP meets its training attack.

ART's trainer draws PGD's random start from numpy's global RNG, so this script seeds it (``--seed``); that is the
only global RNG use, and it is in this script, not in the library. Writes ``classifier.safetensors``,
``train.json`` (settings, time) and the suite's ``report.json`` in OUT.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def _classifier(model: torch.nn.Module, lr: float):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--pgd-iter", type=int, default=7)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--n", type=int, default=256, help="Test images attacked (the first N).")
    parser.add_argument("--attacks", default="pgd,apgd-ce,apgd-dlr,pgd-l2,square")
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--square-queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument(
        "--per-attack", action="store_true", help="Every attack on every image (no cascade); writes report-each.json."
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from art.defences.trainer import AdversarialTrainerMadryPGD

    from art_purify.datasets import load_fashion_mnist
    from art_purify.engine import save_weights, write_json
    from art_purify.evaluation import AttackSettings, evaluate, save_report, summary_table
    from art_purify.models import as_art_classifier
    from art_purify.zoo import load_classifier, load_classifier_weights

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "classifier.safetensors"
    config = json.loads(
        (Path(__file__).resolve().parents[1] / "art_purify/zoo/weights/fashion-mnist-classifier.json").read_text()
    )["config"]
    if not args.evaluate_only:
        x, y = load_fashion_mnist("train", source=args.data, n=args.n_train)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = load_classifier("fashion-mnist").train().requires_grad_(True)
            np.random.seed(args.seed)  # ART's PGD random start (see the module docstring)
            classifier = _classifier(model, args.lr)
            trainer = AdversarialTrainerMadryPGD(
                classifier, nb_epochs=args.epochs, batch_size=128, eps=args.eps, eps_step=args.eps / 4,
                max_iter=args.pgd_iter, num_random_init=1,
            )  # fmt: skip
            t0 = time.time()
            trainer.fit(x, np.eye(10, dtype=np.float32)[y])
            seconds = time.time() - t0
        save_weights(model.state_dict(), weights)
        write_json(
            {"epochs": args.epochs, "n_train": int(len(x)), "lr": args.lr, "pgd_iter": args.pgd_iter, "eps": args.eps,
             "seed": args.seed, "threads": args.threads, "train_seconds": seconds},
            args.out / "train.json",
        )  # fmt: skip
        print(f"trained in {seconds:.0f} s")
    model = load_classifier_weights(weights, config).eval()
    x_test, y_test = load_fashion_mnist("test", source="embedded")
    report = evaluate(
        as_art_classifier(model, device="cpu"),
        x_test[: args.n],
        y_test[: args.n],
        args.attacks,
        AttackSettings(eps=args.eps, max_iter=args.max_iter, square_queries=args.square_queries, batch_size=128),
        seed=args.seed,
        cascade=not args.per_attack,
        sanity_n=8,
        verbose=False,
    )
    if args.per_attack:  # AToP's training attack as AToP meets it: FGSM made on the shipped classifier, transferred
        from art.attacks.evasion import FastGradientMethod

        shipped = as_art_classifier(load_classifier("fashion-mnist"), device="cpu")
        x_fgsm = FastGradientMethod(shipped, eps=args.eps, batch_size=128).generate(x_test[: args.n])
        with torch.no_grad():
            pred = model(torch.from_numpy(x_fgsm)).argmax(1).numpy()
        transfer = {"transfer_fgsm_from_shipped_classifier": float((pred == y_test[: args.n]).mean()), "n": args.n}
        write_json(transfer, args.out / "transfer.json")
        print(f"FGSM made on the shipped classifier, transferred: {100 * transfer[next(iter(transfer))]:.1f} %")
    name = "report-each.json" if args.per_attack else "report.json"
    save_report(report, args.out / name, {"command": "python benchmarks/madry_baseline.py", "seed": args.seed})
    print(summary_table(report, "madry-pgd-at"))


if __name__ == "__main__":
    main()
