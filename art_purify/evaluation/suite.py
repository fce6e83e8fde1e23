# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
The evaluation suite: several ART attacks against one (defended) ART classifier, per-example worst case, majority
vote, sanity checks and an accuracy-against-eps curve.

Reproducibility: every phase (clean votes, each attack, each sanity run) runs with a seed derived from ``seed`` and
the phase's name (:mod:`art_purify.evaluation.seeding`), and the caller's random state is left as it was, so the same
seed gives the same per-example outcomes on the same device.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
from tqdm.auto import tqdm

from art_purify.evaluation.attacks import LABELS, AttackSettings, check_attacks_apply, defences_of, parse_attacks
from art_purify.evaluation.results import AttackOutcome, EvaluationReport
from art_purify.evaluation.runner import AttackRunner, cascade_order
from art_purify.evaluation.sanity import run_sanity_checks
from art_purify.evaluation.seeding import seeded_phase
from art_purify.evaluation.store import PhaseStore, fingerprint, params_of

logger = logging.getLogger(__name__)

#: Presets: ``quick`` fits a few minutes on a 2-core CPU; ``paper`` is Lee & Kim's protocol (200 iterations x 20 EOT
#: samples, step 0.007 at eps 8/255, scaled to the chosen eps, majority vote over 20 purifications).
PRESETS: Dict[str, Dict] = {
    "quick": {
        "max_iter": 10,
        "eot": 2,
        "votes": 3,
        "restarts": 0,
        "step_ratio": 0.25,
        "attacks": ["pgd"],
        "sanity_n": 8,
        "square_queries": 50,
        "eps_curve": (),
    },
    "paper": {
        "max_iter": 200,
        "eot": 20,
        "votes": 20,
        "restarts": 0,
        "step_ratio": 0.007 / (8 / 255),
        "attacks": ["pgd"],
        "sanity_n": 32,
        "square_queries": 1000,
        "eps_curve": (0.5, 2.0),
    },
}
#: One line per preset, for ``--help``.
PRESET_DESCRIPTIONS: Dict[str, str] = {
    "quick": "10 iterations x 2 EOT, 3 votes, step eps/4 (minutes on a CPU)",
    "paper": "Lee & Kim: 200 iterations x 20 EOT, 20 votes, step 0.007 at eps 8/255 scaled to eps",
}


def _check_data(classifier, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) array, got shape {x.shape}.")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}.")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf.")
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of integer labels, got shape {y.shape}.")
    bad = (y < 0) | (y >= classifier.nb_classes)
    if bad.any():
        raise ValueError(
            f"y holds label {int(y[bad][0])} (at index {int(np.flatnonzero(bad)[0])}); labels must lie in "
            f"[0, {classifier.nb_classes})."
        )
    lo, hi = _clip(classifier)
    if x.min() < lo or x.max() > hi:
        raise ValueError(f"x has values in [{x.min():.3g}, {x.max():.3g}], outside clip_values [{lo}, {hi}].")


def _clip(classifier):
    return tuple(float(v) for v in classifier.clip_values) if classifier.clip_values is not None else (0.0, 1.0)


def _is_random(classifier, x: np.ndarray, batch_size: int) -> bool:
    """Whether two predictions of the same inputs differ (a random defence or model)."""
    first = classifier.predict(x, batch_size=batch_size)
    second = classifier.predict(x, batch_size=batch_size)
    return not np.allclose(first, second, rtol=1e-5, atol=1e-6)


def evaluate(
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    attacks: Sequence[str] = ("pgd",),
    settings: Optional[AttackSettings] = None,
    eot: int = 1,
    votes: int = 1,
    seed: int = 0,
    sanity: bool = True,
    sanity_n: int = 32,
    eps_curve: Sequence[float] = (0.5, 2.0),
    checkpoint_dir: Optional[Union[str, Path]] = None,
    resume: bool = False,
    verbose: bool = True,
    cascade: bool = False,
) -> EvaluationReport:
    """
    Attack an ART classifier (with any preprocessing defences, or none) with several ART attacks and report the
    per-example worst case, with sanity checks.

    :param classifier: An ART ``PyTorchClassifier``.
    :param x: ``(N, C, H, W)`` inputs inside the classifier's ``clip_values``.
    :param y: ``(N,)`` integer labels.
    :param attacks: Names from :data:`art_purify.evaluation.attacks.ATTACKS` (``pgd``, ``pgd-l2``, ``apgd-ce``,
                    ``apgd-dlr``, ``autoattack``, ``bpda``, ``square``), or a comma-separated string.
    :param settings: Budgets (:class:`AttackSettings`); ``eps`` must lie in ``(0, max - min]`` of ``clip_values``.
    :param eot: EOT samples per gradient for random defences (set on every defence declaring ``nb_eot``, and used
                by the BPDA wrapper). Ignored (1) when the classifier is deterministic.
    :param votes: Purification runs per majority-vote prediction for random defences (1 when deterministic).
    :param seed: Seed of every phase (see the module docstring).
    :param sanity: Run the sanity checks and the accuracy-against-eps curve on the first ``sanity_n`` examples.
    :param eps_curve: Extra points of that curve, as multiples of ``eps`` (each one more PGD run on the sanity
                      examples); the curve always has 0, ``eps`` and the whole data range (the large-eps check).
    :param checkpoint_dir: Save the clean votes and every finished attack there (adversarial examples and votes),
                           so that an interrupted evaluation can continue; a new run (``resume=False``) clears it.
    :param resume: Continue from ``checkpoint_dir``: finished phases are loaded, the others run with the seeds an
                   uninterrupted run would use. Refused when the data or settings differ from the saved run's.
    :param cascade: Run each attack only on the examples that are still robust (clean-correct, and every earlier
                    attack failed), as AutoAttack does. The worst case is the same kind of figure at a fraction of the
                    cost when earlier attacks break most examples; each attack's accuracy is then cumulative. The
                    attacks run white-box first, then ``bpda``, then ``square``, so that the ``black-box`` and
                    ``bpda`` sanity checks count what those attacks broke beyond the real-gradient attacks.
    :return: An :class:`EvaluationReport`. An example is robust only if it is classified correctly and every attack
             failed on it.
    """
    t_start = time.time()
    names = parse_attacks(attacks)
    if cascade:
        names = cascade_order(names)
    settings = settings or AttackSettings()
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    _check_data(classifier, x, y)
    check_attacks_apply(names, classifier)
    lo, hi = _clip(classifier)
    if not 0 < settings.eps <= hi - lo:
        raise ValueError(f"eps must lie in (0, {hi - lo:g}] (the data range of clip_values), got {settings.eps}.")
    for name, value in (("eot", eot), ("votes", votes), ("sanity_n", sanity_n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    probe = x[: min(len(x), 8)]
    with seeded_phase(classifier, seed, "probe"):
        random = _is_random(classifier, probe, settings.batch_size)
    eff_eot, eff_votes = (eot, votes) if random else (1, 1)
    runner = AttackRunner(classifier, settings, eff_eot, eff_votes, seed, verbose)

    if any(not np.isfinite(f) or f <= 0 for f in eps_curve):
        raise ValueError(f"eps_curve must hold positive multiples of eps, got {tuple(eps_curve)!r}.")
    steps = len(names) + 1 + (4 if sanity else 0)
    progress = tqdm(total=steps, desc="evaluate", disable=not verbose, leave=False)
    store = PhaseStore(
        checkpoint_dir, fingerprint(x, y, names, settings, eot, votes, seed, classifier, cascade), resume
    )
    carried = 0.0  # seconds spent on the phases loaded from the checkpoint, so that time_s is the whole run's
    saved = store.load("clean")
    if saved is None:
        t0 = time.time()
        clean_pred, clean_margin = runner.vote(x, "clean")
        store.save("clean", prediction=clean_pred, margin=clean_margin, time_s=np.float64(time.time() - t0))
    else:
        clean_pred, clean_margin = saved["prediction"], saved["margin"]
        carried += float(saved.get("time_s", 0.0))
    clean_correct = clean_pred == y
    progress.update()
    outcomes: Dict[str, AttackOutcome] = {}
    x_adv_all: Dict[str, np.ndarray] = {}
    robust_so_far = clean_correct.copy()
    for name in names:
        progress.set_postfix_str(name)
        todo = robust_so_far.copy() if cascade else np.ones(len(y), dtype=bool)
        saved = store.load(name)
        if saved is None:
            t0 = time.time()
            x_adv, prediction, margin = x.copy(), np.full(len(y), -1, dtype=np.int64), np.full(len(y), np.nan)
            if todo.any():
                x_adv[todo] = runner.attack(name, x[todo], y[todo], f"attack/{name}")
                prediction[todo], margin[todo] = runner.vote(x_adv[todo], f"vote/{name}")
            elapsed = time.time() - t0
            store.save(
                name, x_adv=x_adv, prediction=prediction, margin=margin, time_s=np.float64(elapsed), attacked=todo
            )
        else:  # done before an interruption
            x_adv, prediction, margin, elapsed = (
                saved["x_adv"],
                saved["prediction"],
                saved["margin"],
                float(saved["time_s"]),
            )
            carried += elapsed
        robust = clean_correct & todo & (prediction == y)
        robust_so_far &= robust
        outcomes[name] = AttackOutcome(
            name,
            LABELS[name],
            prediction.tolist(),
            margin.tolist(),
            robust.tolist(),
            float(robust.mean()),
            elapsed,
            todo.tolist() if cascade else None,
        )
        x_adv_all[name] = x_adv
        progress.update()
    robust_all = clean_correct.copy()
    for outcome in outcomes.values():
        robust_all &= np.asarray(outcome.robust)

    report = EvaluationReport(
        n=len(y),
        labels=y.tolist(),
        settings={
            "attacks": names,
            **settings.to_json(),
            "eot": eff_eot,
            "votes": eff_votes,
            "eot_requested": eot,
            "votes_requested": votes,
            "seed": seed,
            "sanity_n": min(sanity_n, len(y)),
            "eps_curve_factors": [float(f) for f in eps_curve],
            "cascade": bool(cascade),
            "clip_values": [lo, hi],
            "defences": [type(d).__name__ for d in defences_of(classifier)],
            "defence_params": [params_of(d) for d in defences_of(classifier)],
        },
        random_defence=random,
        clean_prediction=clean_pred.tolist(),
        clean_vote_margin=clean_margin.tolist(),
        clean_correct=clean_correct.tolist(),
        clean_accuracy=float(clean_correct.mean()),
        attacks=outcomes,
        robust=robust_all.tolist(),
        robust_accuracy=float(robust_all.mean()),
        x_adv=x_adv_all,
    )
    if sanity:
        run_sanity_checks(report, runner, x[:sanity_n], y[:sanity_n], progress)
    progress.close()
    report.time_s = time.time() - t_start + carried
    return report
