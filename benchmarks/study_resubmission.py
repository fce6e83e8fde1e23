# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Study (docs/results.md, issue 21): variants of ResubmissionPGD against ART's PGD-EOT on a shipped purifier,
the same gradient budget, majority vote and N-evaluation over 5 votes (the same vote seeds for every variant).

Run: OMP_NUM_THREADS=1 python benchmarks/study_resubmission.py 32 uniform 10   (N images, defence, iterations)
"""

import sys, time, numpy as np, torch
from art_purify.datasets import load_fashion_mnist
from art_purify.evaluation import as_art_classifier, build_defence, AttackSettings
from art_purify.evaluation.voting import majority_vote
from art_purify.evaluation.resubmission_pgd import ResubmissionPGD
from art_purify.zoo import load_classifier, load_diffusion
from art.attacks.evasion import ProjectedGradientDescent

n = int(sys.argv[1])
defence_name = sys.argv[2]
iters = int(sys.argv[3])
x, y = load_fashion_mnist(n=n)
model = load_classifier("fashion-mnist")
unet, sched = load_diffusion("fashion-mnist")
d = build_defence(defence_name, unet, sched, model, gradient="surrogate", nb_eot=4, seed=0, device_type="cpu")
clf = as_art_classifier(model, preprocessing_defences=[d])


def neval(xa):
    d.set_params(seed=123, nb_eot=4)
    pred, _, counts = majority_vote(clf, xa, 5, 64)
    return (pred == y).mean(), (counts[np.arange(n), y] == 5).mean()


print("clean", neval(x), flush=True)
variants = [
    ("pgd-eot", None),
    ("T=inf,best", (1e6, "broken")),
    ("T=1,best", (1.0, "broken")),
    ("T=1,last", (1.0, "last")),
    ("T=4,best", (4.0, "broken")),
    ("T=4,last", (4.0, "last")),
]
for name, v in variants:
    d.set_params(seed=7, nb_eot=4)
    t = time.time()
    if v is None:
        np.random.seed(0)
        xa = ProjectedGradientDescent(
            clf, eps=0.1, eps_step=0.025, max_iter=iters, batch_size=64, verbose=False
        ).generate(x, y=y)
    else:
        xa = ResubmissionPGD(clf, eps=0.1, eps_step=0.025, max_iter=iters, temperature=v[0], select=v[1]).generate(x, y)
    print(name, neval(xa), f"{time.time()-t:.0f}s", flush=True)
