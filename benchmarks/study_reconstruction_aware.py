# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The defence-aware attack's ERE weight: robust accuracy of the reconstruction search on the shipped Fashion-MNIST
models under :class:`art_purify.evaluation.ReconstructionAwarePGD` with several ``ere_weight`` values (the exact
gradient through the search; ``ere_weight = 0`` is PGD with early stopping). Figures in ``docs/defences.md``.

    python benchmarks/study_reconstruction_aware.py --n 16 --weights 0 0.5 1
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--max-iter", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from art_purify.datasets import load_fashion_mnist
    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
    from art_purify.evaluation import ReconstructionAwarePGD, as_art_classifier
    from art_purify.zoo import load_classifier, load_diffusion

    torch.set_num_threads(args.threads)
    unet, scheduler = load_diffusion("fashion-mnist", device="cpu")
    search = ReconstructionSearchPyTorch(unet, scheduler, max_iter=3, nb_noise=1, step_size=0.05, device_type="cpu")
    classifier = as_art_classifier(load_classifier("fashion-mnist", device="cpu"), preprocessing_defences=[search])
    x, y = load_fashion_mnist(n=args.n)
    print(f"clean accuracy {(classifier.predict(x).argmax(1) == y).mean():.3f} on {args.n} images")
    for weight in args.weights:
        t0 = time.time()
        attack = ReconstructionAwarePGD(classifier, eps=0.1, eps_step=0.025, max_iter=args.max_iter, ere_weight=weight)
        x_adv = attack.generate(x, y)
        robust = (classifier.predict(x_adv).argmax(1) == y).mean()
        print(f"ere_weight {weight:g}: robust accuracy {robust:.3f} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
