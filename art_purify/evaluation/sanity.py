# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
Sanity checks run with every evaluation (after AutoAttack's checks and Carlini et al., "On Evaluating Adversarial
Robustness", 2019). Each check that fails becomes a visible warning in the report; none of them changes a result.

1. ``randomness``: the defended classifier is random but the gradient attacks use single samples (no EOT).
2. ``gradients``: NaN/inf input gradients, or exactly zero gradients of the true-class logit (gradient masking).
3. ``iterations``: robust accuracy does not go down when the attack runs 4x longer.
4. ``black-box``: the black-box Square attack beats the white-box attacks (with ``cascade``: Square breaks, beyond
   the chance flips of a fresh vote, more than the tolerance of the examples every white-box attack failed on).
5. ``large-eps``: PGD with eps = the whole data range does not drive accuracy to near 0.
6. ``bpda``: BPDA (identity gradient) beats the real-gradient attacks (with ``cascade``: as for ``black-box``).
7. ``exact-gradient``: the white-box attacks only had a surrogate (or truncated, or BPDA) gradient of a defence that
   also offers the exact one; approximate gradients overestimate robustness (MEFA, arXiv 2605.06357), so the exact
   gradient is the reference (no attack run: read from the defences' parameters).

Checks 2, 3 and 5 and the accuracy-against-eps curve (0, eps, the whole data range and the ``eps_curve`` multiples
of eps) run on the first ``sanity_n`` examples with l_inf PGD (real gradient, same EOT, votes and step ratio as the
run).
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from art_purify.evaluation.attacks import WHITE_BOX
from art_purify.evaluation.results import EvaluationReport, SanityCheck
from art_purify.evaluation.runner import AttackRunner, primary_gradient_attack, replace_settings, tolerance
from art_purify.evaluation.seeding import seeded_phase

#: Accuracy at eps = the whole data range above which the ``large-eps`` check fails.
LARGE_EPS_MAX_ACCURACY = 0.1


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _robust_acc(runner: AttackRunner, x_adv: np.ndarray, y: np.ndarray, clean_ok: np.ndarray, key: str) -> float:
    prediction = runner.vote(x_adv, key)[0]
    return float((clean_ok & (prediction == y)).mean())


def run_sanity_checks(
    report: EvaluationReport, runner: AttackRunner, xs: np.ndarray, ys: np.ndarray, progress: Any = None
) -> None:
    """Run every check on ``report`` (in place): appends to ``report.checks`` and fills ``report.eps_curve``."""
    names = report.settings["attacks"]
    m = len(ys)
    random = report.random_defence
    checks: List[SanityCheck] = []
    gradient_attacks = [n for n in names if n in WHITE_BOX or n == "bpda"]

    # 1. randomness without EOT
    if not random:
        checks.append(SanityCheck("randomness", True, "deterministic: two predictions of the same inputs agree"))
    elif not gradient_attacks:
        checks.append(SanityCheck("randomness", None, "random defence; no gradient attack in this run"))
    elif runner.eot <= 1:
        checks.append(
            SanityCheck(
                "randomness",
                False,
                "the defence is random (two predictions of the same inputs "
                "differ) but each attack gradient is a single sample: use EOT (eot > 1)",
            )
        )
    else:
        checks.append(
            SanityCheck(
                "randomness",
                True,
                f"random defence; gradients averaged over {runner.eot} EOT "
                "samples, predictions by majority vote over "
                f"{runner.votes} runs",
            )
        )

    # 2. zero or NaN gradients of the true-class logit
    with seeded_phase(runner.classifier, runner.seed, "sanity/gradients"):
        grads = runner.classifier.class_gradient(xs, label=ys)
    grads = grads.reshape(m, -1)
    bad = ~np.isfinite(grads).all(axis=1)
    zero = ~bad & (np.abs(grads).max(axis=1) == 0)
    if bad.any() or zero.any():
        checks.append(
            SanityCheck(
                "gradients",
                False,
                f"input gradients of the true-class logit are NaN/inf on "
                f"{int(bad.sum())} and exactly zero on {int(zero.sum())} of {m} examples: the "
                "defence masks gradients (use BPDA or a surrogate gradient)",
            )
        )
    else:
        checks.append(
            SanityCheck(
                "gradients",
                True,
                f"finite and non-zero on all {m} examples (median |g|_1 " f"{np.median(np.abs(grads).sum(1)):.3g})",
            )
        )
    _tick(progress)

    # the l_inf PGD runs on the subset: eps curve, more-iterations check, large-eps check
    settings = runner.settings
    kind = primary_gradient_attack(names)
    clean_ok = np.asarray(report.clean_correct[:m])
    clean_acc = float(clean_ok.mean())

    def pgd_acc(eps: float, max_iter: Optional[int] = None) -> float:
        local = replace_settings(settings, eps, max_iter)
        key = f"sanity/{kind}/eps={local.eps!r}/max_iter={local.max_iter}"
        x_adv = runner.attack(kind, xs, ys, f"attack/{key}", local)
        return _robust_acc(runner, x_adv, ys, clean_ok, f"vote/{key}")

    lo, hi = report.settings["clip_values"]
    full = hi - lo
    standalone = not report.settings.get("cascade") or (names and names[0] == kind)
    if kind in report.attacks and standalone:
        at_eps = float(np.mean(report.attacks[kind].robust[:m]))
    else:
        at_eps = pgd_acc(settings.eps)
    curve = [(0.0, clean_acc)]
    for factor in report.settings["eps_curve_factors"]:
        eps = settings.eps * factor
        if eps < full:
            curve.append((eps, pgd_acc(eps)))
    curve.append((settings.eps, at_eps))
    _tick(progress)
    large = pgd_acc(full)
    curve.append((full, large))
    curve.sort()
    report.eps_curve = [{"eps": float(e), "robust_accuracy": a, "n": m, "attack": kind} for e, a in curve]
    _tick(progress)

    # 3. more iterations must not help the defence
    short_iter = max(1, settings.max_iter // 4)
    if short_iter == settings.max_iter:
        checks.append(SanityCheck("iterations", None, "max_iter = 1: nothing to compare"))
    else:
        short = pgd_acc(settings.eps, short_iter)
        tol = tolerance(random, m)
        ok = at_eps <= short + tol
        checks.append(
            SanityCheck(
                "iterations",
                ok,
                f"{kind} on {m} examples: {_pct(short)} after {short_iter} "
                f"iterations, {_pct(at_eps)} after {settings.max_iter}"
                + (
                    ""
                    if ok
                    else ": more iterations made the attack weaker (noisy or masked "
                    "gradients, or a step size too large)"
                ),
            )
        )
    _tick(progress)

    # 4. black-box must not beat white-box
    white = {n: report.attacks[n].robust_accuracy for n in names if n in WHITE_BOX}
    tol = tolerance(random, report.n)
    if "square" in report.attacks and white:
        square = report.attacks["square"]
        if square.attacked is not None:  # cascade: Square ran on the examples every earlier attack failed on
            ok, detail = _beyond(square, report, runner, tol, "Square", "every gradient attack")
        else:
            best = min(white.values())
            white_robust = np.all([np.asarray(report.attacks[n].robust) for n in white], axis=0)
            only = int(np.sum(~np.asarray(square.robust) & white_robust))
            ok = square.robust_accuracy >= best - tol
            detail = (
                f"Square {_pct(square.robust_accuracy)} vs best white-box {_pct(best)}; Square alone broke "
                f"{only} examples"
            )
        checks.append(
            SanityCheck(
                "black-box", ok, detail + ("" if ok is not False else ": the gradient attacks " "are being misled")
            )
        )
    else:
        checks.append(SanityCheck("black-box", None, "needs square and a white-box attack in the run"))

    # 5. a large eps drives accuracy to about 0
    limit = max(LARGE_EPS_MAX_ACCURACY, 1.0 / m)
    ok = large <= limit
    checks.append(
        SanityCheck(
            "large-eps",
            ok,
            f"{kind} at eps = {full:g} (the whole data range): {_pct(large)} "
            f"on {m} examples"
            + (
                ""
                if ok
                else f", above {_pct(limit)}: the attack cannot " "follow the defended model (gradient masking)"
            ),
        )
    )

    # 6. BPDA must not beat the real gradient
    if "bpda" in report.attacks and white:
        bpda = report.attacks["bpda"]
        if bpda.attacked is not None:
            ok, detail = _beyond(bpda, report, runner, tol, "BPDA", "every real-gradient attack")
        else:
            best = min(white.values())
            ok = bpda.robust_accuracy >= best - tol
            detail = f"BPDA {_pct(bpda.robust_accuracy)} vs best real-gradient attack {_pct(best)}"
        checks.append(
            SanityCheck(
                "bpda",
                ok,
                detail
                + (
                    ""
                    if ok is not False
                    else ": the identity gradient beats " "the real one (masked or obfuscated gradients)"
                ),
            )
        )
    else:
        checks.append(SanityCheck("bpda", None, "needs bpda and a white-box attack in the run"))
    checks.append(exact_gradient_check(report))
    report.checks = checks


def exact_gradient_check(report: EvaluationReport) -> SanityCheck:
    """Check 7 (see the module docstring): from the defences' ``gradient`` parameters in ``report.settings``."""
    modes = [
        (name, params["gradient"])
        for name, params in zip(report.settings.get("defences", []), report.settings.get("defence_params", []))
        if "gradient" in params
    ]
    if not modes:
        return SanityCheck("exact-gradient", None, "no defence offers a choice of gradient")
    if not any(n in WHITE_BOX for n in report.settings["attacks"]):
        return SanityCheck("exact-gradient", None, "no white-box attack in this run")
    approximate = [(name, mode) for name, mode in modes if mode != "exact"]
    if not approximate:
        return SanityCheck("exact-gradient", True, "the white-box attacks had the exact gradient of every defence")
    listed = ", ".join(f"{name} gradient={mode!r}" for name, mode in approximate)
    return SanityCheck(
        "exact-gradient",
        False,
        f"the white-box attacks had an approximate gradient of {listed}: approximate gradients can overestimate "
        "robustness (MEFA, arXiv 2605.06357); the exact checkpointed gradient is the reference: rerun with "
        "gradient='exact' on those defences (art-purify evaluate --gradient exact)",
    )


def _beyond(outcome, report: EvaluationReport, runner: AttackRunner, tol: float, label: str, earlier: str):
    """
    Cascade runs: how many examples ``outcome`` broke among those every earlier attack failed on, beyond chance;
    more than ``tol`` of all examples fails the check (``None``: nothing was left to attack).

    For a random defence the survivors were selected by noisy majority votes, so a fresh vote flips some of them
    even when an attack does nothing. The chance level is measured: the survivors are voted on again on the
    adversarial inputs of the first attack (which they survived), and those flips are subtracted; since both counts
    are random, their difference may also exceed the tolerance by two standard deviations (Poisson:
    ``2 sqrt(broken + chance)``). For a deterministic defence nothing is subtracted or added.
    """
    attacked = np.asarray(outcome.attacked)
    k = int(attacked.sum())
    if k == 0:
        return None, f"{label} had no example left to attack (every example was broken before it)"
    n = report.n
    broken = int(np.sum(attacked & ~np.asarray(outcome.robust)))
    chance = 0
    if report.random_defence:
        first = report.settings["attacks"][0]
        prediction = runner.vote(report.x_adv[first][attacked], f"sanity/chance/{label}")[0]
        chance = int(np.sum(prediction != np.asarray(report.labels)[attacked]))
    excess = broken - chance
    # both counts are noisy: allow two standard deviations of their difference (Poisson) on top of the tolerance
    allowed = tol * n + (2.0 * np.sqrt(broken + chance) if report.random_defence else 0.0)
    ok = bool(excess <= allowed)
    detail = f"{label} broke {broken} of the {k} examples {earlier} failed on"
    if report.random_defence:
        detail += (
            f"; a fresh vote on their {first} inputs flips {chance} by chance ({max(excess, 0)} beyond "
            f"chance, {allowed:.1f} allowed: {_pct(tol)} of {n} plus two standard deviations)"
        )
    else:
        detail += f" ({_pct(broken / n)} of {n}; tolerance {_pct(tol)})"
    return ok, detail


def _tick(progress) -> None:
    if progress is not None:
        progress.update()
