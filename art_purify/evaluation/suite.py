# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
The evaluation suite: several ART attacks against one (defended) ART classifier, per-example worst case, majority
vote, sanity checks and an accuracy-against-eps curve.

Reproducibility: every phase (clean votes, each attack, each sanity run) runs with a seed derived from ``seed``, the
phase's name (:mod:`art_purify.evaluation.seeding`) and, for the attack phases, the index of the example batch
(:mod:`art_purify.evaluation.sharding`), and the caller's random state is left as it was, so the same seed gives the
same per-example outcomes on the same device, in one process or split across ranks (:func:`evaluate_shard`,
:func:`evaluate_distributed`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm.auto import tqdm

from art_purify.evaluation.attacks import (
    DW_BOX,
    LABELS,
    AttackSettings,
    check_attacks_apply,
    defences_of,
    parse_attacks,
)
from art_purify.evaluation.results import AttackOutcome, EvaluationReport
from art_purify.evaluation.runner import AttackRunner, cascade_order
from art_purify.evaluation.sanity import run_sanity_checks
from art_purify.evaluation.seeding import fixed_noise_defences, seeded_phase
from art_purify.evaluation.sharding import (
    EvaluationShard,
    batch_key,
    batch_slices,
    check_shard,
    merge_shards,
    owned_batches,
    phase_file,
)
from art_purify.evaluation.store import PhaseStore, fingerprint, params_of

logger = logging.getLogger(__name__)

#: Presets: ``quick`` fits a few minutes on a 2-core CPU; ``paper`` is Lee & Kim's protocol (200 iterations x 20 EOT
#: samples, step 0.007 at eps 8/255, scaled to the chosen eps, majority vote over 20 purifications); ``thorough`` runs
#: the protocols of docs/evaluation.md "Protocols for random defences" with the exact gradient (``gradient``: the
#: defence's gradient mode that ``art-purify evaluate`` uses unless ``--gradient`` is given).
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
        "gradient": "exact",
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
        "gradient": "exact",
    },
    "thorough": {
        "max_iter": 100,
        "eot": 10,
        "votes": 10,
        "restarts": 0,
        "step_ratio": 0.1,
        "attacks": ["pgd", "apgd-ce", "pgd-dw", "apgd-dw", "resubmission"],
        "sanity_n": 32,
        "square_queries": 1000,
        "eps_curve": (0.5, 2.0),
        "gradient": "exact",
    },
}
#: One line per preset, for ``--help``.
PRESET_DESCRIPTIONS: Dict[str, str] = {
    "quick": "10 iterations x 2 EOT, 3 votes, step eps/4 (minutes on a CPU)",
    "paper": "Lee & Kim: 200 iterations x 20 EOT, 20 votes, step 0.007 at eps 8/255 scaled to eps",
    "thorough": "the 2024-2026 protocols for random defences: exact gradient, PGD-EOT, APGD-CE, DW-box PGD and APGD "
    "(noise fixed), resubmission-aware PGD; 100 iterations x 10 EOT, 10 votes (N-evaluation over 10)",
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


@dataclasses.dataclass
class _Plan:  # pylint: disable=too-many-instance-attributes
    """What every rank of an evaluation agrees on before running its batches."""

    classifier: Any
    x: np.ndarray
    y: np.ndarray
    names: List[str]
    settings: AttackSettings
    eot: int
    votes: int
    seed: int
    cascade: bool
    seeding: str
    random: bool
    runner: AttackRunner
    batches: List[slice]
    fingerprint: str
    verbose: bool


def _plan(  # pylint: disable=too-many-arguments,too-many-locals
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    attacks: Union[str, Sequence[str]],
    settings: Optional[AttackSettings],
    eot: int,
    votes: int,
    seed: int,
    sanity_n: int,
    eps_curve: Sequence[float],
    verbose: bool,
    cascade: bool,
    seeding: str,
) -> _Plan:
    """Check the arguments, probe the defence for randomness and fix the batches and the fingerprint."""
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
    if any(not np.isfinite(f) or f <= 0 for f in eps_curve):
        raise ValueError(f"eps_curve must hold positive multiples of eps, got {tuple(eps_curve)!r}.")
    batches = batch_slices(len(y), settings.batch_size, seeding)
    probe = x[: min(len(x), 8)]
    with seeded_phase(classifier, seed, "probe"):
        random = _is_random(classifier, probe, settings.batch_size)
    if random and any(n in DW_BOX for n in names):
        fixed, unsupported = fixed_noise_defences(classifier)
        if unsupported or not fixed:
            culprit = (
                ", ".join(type(d).__name__ for d in unsupported) + " (not declared stochastic = False: may be random)"
                if unsupported
                else "the classifier itself (random with no random defence in front of it)"
            )
            raise ValueError(
                f"the DW-box attacks need every random defence to have a fixed-noise mode (noise='fixed'); "
                f"none in {culprit}."
            )
    eff_eot, eff_votes = (eot, votes) if random else (1, 1)
    runner = AttackRunner(classifier, settings, eff_eot, eff_votes, seed, verbose)
    digest = fingerprint(x, y, names, settings, eot, votes, seed, classifier, cascade, seeding)
    return _Plan(
        classifier, x, y, names, settings, eot, votes, seed, cascade, seeding, random, runner, batches, digest, verbose
    )


def _attack_phase(  # pylint: disable=too-many-arguments
    plan: _Plan, index: int, name: str, x: np.ndarray, y: np.ndarray, todo: np.ndarray
) -> Dict[str, np.ndarray]:
    """Attack ``name`` on the examples ``todo`` of batch ``index`` (inputs ``x``, labels ``y``), its votes and, for a
    DW-box attack, its fixed-noise prediction: the arrays its phase file keeps."""
    runner = plan.runner
    rows = plan.batches[index]
    keys = np.arange(rows.start, rows.stop)  # the examples' indices in the evaluation: their fixed-noise keys
    t0 = time.time()
    x_adv, prediction, margin = x.copy(), np.full(len(y), -1, dtype=np.int64), np.full(len(y), np.nan)
    counts = np.zeros((len(y), int(plan.classifier.nb_classes)), dtype=np.int64)
    fixed = np.full(len(y), -1, dtype=np.int64)
    if todo.any():
        x_adv[todo] = runner.attack(name, x[todo], y[todo], batch_key(f"attack/{name}", index), keys=keys[todo])
        prediction[todo], margin[todo], counts[todo] = runner.vote(x_adv[todo], batch_key(f"vote/{name}", index))
        if name in DW_BOX:
            fixed[todo] = runner.fixed_noise_prediction(x_adv[todo], x[todo], keys[todo])
    saved = {"x_adv": x_adv, "prediction": prediction, "margin": margin, "counts": counts, "attacked": todo}
    if name in DW_BOX:
        saved["fixed_prediction"] = fixed
    saved["time_s"] = np.asarray(time.time() - t0)
    return saved


def _run_batch(plan: _Plan, store: PhaseStore, index: int) -> Tuple[Dict[str, np.ndarray], float, bool]:
    """Every phase of batch ``index`` (each loaded from ``store`` when it finished before): its arrays (see
    :class:`EvaluationShard`), the seconds the loaded phases had taken, and whether all of them were loaded."""
    rows = plan.batches[index]
    x, y = plan.x[rows], plan.y[rows]
    out: Dict[str, np.ndarray] = {}
    loaded, carried = True, 0.0
    saved = store.load(phase_file(index, "clean"))
    if saved is not None:
        carried += float(saved["time_s"])
    else:
        loaded = False
        t0 = time.time()
        prediction, margin, counts = plan.runner.vote(x, batch_key("clean", index))
        saved = {"prediction": prediction, "margin": margin, "counts": counts, "time_s": np.asarray(time.time() - t0)}
        store.save(phase_file(index, "clean"), **saved)
    out.update({f"clean/{k}": v for k, v in saved.items()})
    robust_so_far = saved["prediction"] == y
    for name in plan.names:
        todo = robust_so_far.copy() if plan.cascade else np.ones(len(y), dtype=bool)
        saved = store.load(phase_file(index, name))
        if saved is not None:
            carried += float(saved["time_s"])
        else:
            loaded = False
            saved = _attack_phase(plan, index, name, x, y, todo)
            store.save(phase_file(index, name), **saved)
        robust_so_far &= todo & (saved["prediction"] == y)
        out.update({f"{name}/{k}": v for k, v in saved.items()})
    return out, carried, loaded


def _run_shard(  # pylint: disable=too-many-arguments
    plan: _Plan,
    shard: Tuple[int, int],
    checkpoint_dir: Optional[Union[str, Path]],
    resume: bool,
    on_batch: Optional[Callable[[int, bool], None]],
    progress: Any,
) -> EvaluationShard:
    """Run (or load) the batches of rank ``shard[0]`` of ``shard[1]``."""
    mine = owned_batches(len(plan.batches), shard)
    store = PhaseStore(checkpoint_dir, plan.fingerprint, resume, rank=shard[0])
    if not resume:
        store.clear([phase_file(b, p) for b in mine for p in ("clean", *plan.names)])
    batches: Dict[int, Dict[str, np.ndarray]] = {}
    loaded: List[int] = []
    carried = 0.0
    for index in mine:
        progress.set_postfix_str(f"batch {index + 1}/{len(plan.batches)}")
        batches[index], seconds, was_loaded = _run_batch(plan, store, index)
        carried += seconds
        if was_loaded:
            loaded.append(index)
        progress.update(1 + len(plan.names))
        if on_batch is not None:
            on_batch(index, was_loaded)
    return EvaluationShard(plan.fingerprint, len(plan.y), len(plan.batches), plan.random, batches, loaded, carried)


def _report(  # pylint: disable=too-many-locals
    plan: _Plan, shard: EvaluationShard, lo: float, hi: float, eps_curve: Sequence[float], sanity_n: int
):
    """The report of a complete shard (sanity checks not yet run)."""
    order = range(shard.n_batches)

    def joined(key: str) -> np.ndarray:
        return np.concatenate([shard.batches[b][key] for b in order])

    y = plan.y
    rows = np.arange(len(y))
    clean_pred, clean_margin = joined("clean/prediction"), joined("clean/margin")
    clean_counts = joined("clean/counts")
    clean_correct = clean_pred == y
    # N-evaluation (resubmission): correct in ALL the votes' purifications, i.e. every vote on the true class
    clean_all_votes = clean_counts[rows, y] == plan.runner.votes
    outcomes: Dict[str, AttackOutcome] = {}
    x_adv_all: Dict[str, np.ndarray] = {}
    robust_all, robust_all_votes = clean_correct.copy(), clean_all_votes.copy()
    for name in plan.names:
        todo, prediction = joined(f"{name}/attacked").astype(bool), joined(f"{name}/prediction")
        counts = joined(f"{name}/counts")
        robust = clean_correct & todo & (prediction == y)
        # in a cascade every figure is cumulative: N-evaluation also keeps the examples earlier attacks broke broken
        earlier = robust_all_votes if plan.cascade else clean_all_votes
        all_votes = earlier & todo & (counts[rows, y] == plan.runner.votes)
        robust_all &= robust
        robust_all_votes &= all_votes
        outcome = AttackOutcome(
            name,
            LABELS[name],
            prediction.tolist(),
            joined(f"{name}/margin").tolist(),
            robust.tolist(),
            float(robust.mean()),
            float(sum(float(shard.batches[b][f"{name}/time_s"]) for b in order)),
            todo.tolist() if plan.cascade else None,
            vote_counts=counts.tolist(),
            all_votes_robust=all_votes.tolist(),
            all_votes_accuracy=float(all_votes.mean()),
        )
        if name in DW_BOX:
            fixed = joined(f"{name}/fixed_prediction")
            fixed_robust = clean_correct & todo & (fixed == y)
            outcome.fixed_noise_prediction = fixed.tolist()
            outcome.fixed_noise_robust = fixed_robust.tolist()
            outcome.fixed_noise_accuracy = float(fixed_robust.mean())
        outcomes[name] = outcome
        x_adv_all[name] = joined(f"{name}/x_adv")
    classifier = plan.classifier
    return EvaluationReport(
        n=len(y),
        labels=y.tolist(),
        settings={
            "attacks": plan.names,
            **plan.settings.to_json(),
            "eot": plan.runner.eot,
            "votes": plan.runner.votes,
            "eot_requested": plan.eot,
            "votes_requested": plan.votes,
            "seed": plan.seed,
            "seeding": plan.seeding,
            "sanity_n": min(sanity_n, len(y)),
            "eps_curve_factors": [float(f) for f in eps_curve],
            "cascade": bool(plan.cascade),
            "clip_values": [lo, hi],
            "defences": [type(d).__name__ for d in defences_of(classifier)],
            "defence_params": [params_of(d) for d in defences_of(classifier)],
        },
        random_defence=plan.random,
        clean_prediction=clean_pred.tolist(),
        clean_vote_margin=clean_margin.tolist(),
        clean_correct=clean_correct.tolist(),
        clean_accuracy=float(clean_correct.mean()),
        attacks=outcomes,
        robust=robust_all.tolist(),
        robust_accuracy=float(robust_all.mean()),
        x_adv=x_adv_all,
        clean_vote_counts=clean_counts.tolist(),
        clean_all_votes_correct=clean_all_votes.tolist(),
        clean_all_votes_accuracy=float(clean_all_votes.mean()),
        robust_all_votes=robust_all_votes.tolist(),
        robust_all_votes_accuracy=float(robust_all_votes.mean()),
    )


def _batch_seconds(shard: EvaluationShard, names: Sequence[str]) -> float:
    return float(
        sum(float(v[f"{p}/time_s"]) for v in shard.batches.values() for p in ("clean", *names) if f"{p}/time_s" in v)
    )


def evaluate(  # pylint: disable=too-many-arguments,too-many-locals
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    attacks: Union[str, Sequence[str]] = ("pgd",),
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
    seeding: str = "batch",
    shards: Optional[Sequence[EvaluationShard]] = None,
    on_batch: Optional[Callable[[int, bool], None]] = None,
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
                     Its ``batch_size`` is also the size of the example batches that carry the seeds (``seeding``).
    :param eot: EOT samples per gradient for random defences (set on every defence declaring ``nb_eot``, and used
                by the BPDA wrapper). Ignored (1) when the classifier is deterministic.
    :param votes: Purification runs per majority-vote prediction for random defences (1 when deterministic).
    :param seed: Seed of every phase (see the module docstring).
    :param sanity: Run the sanity checks and the accuracy-against-eps curve on the first ``sanity_n`` examples.
    :param eps_curve: Extra points of that curve, as multiples of ``eps`` (each one more PGD run on the sanity
                      examples); the curve always has 0, ``eps`` and the whole data range (the large-eps check).
    :param checkpoint_dir: Save every finished phase of every example batch there (adversarial examples and votes),
                           so that an interrupted evaluation can continue; a new run (``resume=False``) clears it.
    :param resume: Continue from ``checkpoint_dir``: finished phases are loaded, the others run with the seeds an
                   uninterrupted run would use. Refused when the data or settings differ from the saved run's.
    :param cascade: Run each attack only on the examples that are still robust (clean-correct, and every earlier
                    attack failed), as AutoAttack does. The worst case is the same kind of figure at a fraction of the
                    cost when earlier attacks break most examples; each attack's accuracy is then cumulative. The
                    attacks run white-box first, then ``bpda``, then ``square``, so that the ``black-box`` and
                    ``bpda`` sanity checks count what those attacks broke beyond the real-gradient attacks.
    :param seeding: ``"batch"`` (seeds per example batch of ``settings.batch_size``, see
                    :mod:`~art_purify.evaluation.sharding`; a run split across ranks gives the same report) or
                    ``"phase"`` (the whole run is one batch: the seeding of reports with ``report_version`` 1).
    :param shards: The batches' outcomes, already run by :func:`evaluate_shard` (one shard per rank, merged here):
                   only the report and its sanity checks are computed. They must come from a run with the same
                   data, settings and weights, and cover every batch.
    :param on_batch: Called as ``on_batch(index, loaded)`` after each example batch (``loaded``: every phase came
                     from the checkpoint), e.g. for a launcher's progress report.
    :return: An :class:`EvaluationReport`. An example is robust only if it is classified correctly and every attack
             failed on it.
    """
    t_start = time.time()
    plan = _plan(classifier, x, y, attacks, settings, eot, votes, seed, sanity_n, eps_curve, verbose, cascade, seeding)
    steps = len(plan.batches) * (1 + len(plan.names)) + (4 if sanity else 0)
    progress = tqdm(total=steps, desc="evaluate", disable=not verbose, leave=False)
    if shards is None:
        shard = _run_shard(plan, (0, 1), checkpoint_dir, resume, on_batch, progress)
        carried = shard.loaded_s  # the phases loaded from the checkpoint: time_s is the whole run's
    else:
        if checkpoint_dir is not None or resume or on_batch is not None:
            raise ValueError(
                "with shards, checkpoint_dir, resume and on_batch do not apply (the ranks ran the batches)."
            )
        if isinstance(shards, EvaluationShard) or not all(isinstance(s, EvaluationShard) for s in shards):
            raise ValueError("shards must be a list of EvaluationShard objects (one per rank).")
        if seeding != "batch":
            raise ValueError("shards come from per-batch seeding; call evaluate with seeding='batch'.")
        shard = merge_shards(shards)
        if shard.fingerprint != plan.fingerprint:
            raise ValueError("the shards come from an evaluation with other data, settings or weights than this call.")
        if not shard.complete:
            missing = sorted(set(range(shard.n_batches)) - set(shard.batches))
            raise ValueError(f"the shards miss batch {missing[0]} (of {shard.n_batches}); run every rank first.")
        progress.update(len(plan.batches) * (1 + len(plan.names)))
        # the ranks ran in parallel: the slowest one's seconds, as a split run's wall time would count them
        carried = max(_batch_seconds(s, plan.names) for s in shards)
    report = _finish(plan, shard, sanity, sanity_n, eps_curve, progress)
    report.time_s = time.time() - t_start + carried
    return report


def _finish(  # pylint: disable=too-many-arguments
    plan: _Plan, shard: EvaluationShard, sanity: bool, sanity_n: int, eps_curve: Sequence[float], progress: Any
) -> EvaluationReport:
    """The report of a complete shard, with its sanity checks (run here, on the first ``sanity_n`` examples)."""
    lo, hi = _clip(plan.classifier)
    report = _report(plan, shard, lo, hi, eps_curve, sanity_n)
    if sanity:
        run_sanity_checks(report, plan.runner, plan.x[:sanity_n], plan.y[:sanity_n], progress)
    progress.close()
    return report


def evaluate_shard(  # pylint: disable=too-many-arguments
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    shard: Tuple[int, int],
    attacks: Union[str, Sequence[str]] = ("pgd",),
    settings: Optional[AttackSettings] = None,
    eot: int = 1,
    votes: int = 1,
    seed: int = 0,
    checkpoint_dir: Optional[Union[str, Path]] = None,
    resume: bool = False,
    verbose: bool = True,
    cascade: bool = False,
    on_batch: Optional[Callable[[int, bool], None]] = None,
) -> EvaluationShard:
    """
    Run rank ``shard[0]``'s part of an evaluation split across ``shard[1]`` ranks (batches ``rank, rank + world,
    ...`` of ``settings.batch_size`` examples), for launchers of your own (SLURM, Ray): every rank calls this with
    the same arguments, then one process passes all the shards to :func:`evaluate` (``shards=[...]``), or, when the
    ranks share ``checkpoint_dir``, calls :func:`evaluate` with ``checkpoint_dir`` and ``resume=True``, which loads
    every batch and runs only the sanity checks. The arguments are :func:`evaluate`'s (``seeding`` is ``"batch"``).
    """
    shard = check_shard(shard)
    plan = _plan(classifier, x, y, attacks, settings, eot, votes, seed, 1, (), verbose, cascade, "batch")
    mine = owned_batches(len(plan.batches), shard)
    progress = tqdm(total=len(mine) * (1 + len(plan.names)), desc=f"rank {shard[0]}", disable=not verbose, leave=False)
    try:
        return _run_shard(plan, shard, checkpoint_dir, resume, on_batch, progress)
    finally:
        progress.close()


def evaluate_distributed(  # pylint: disable=too-many-arguments,too-many-locals
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    attacks: Union[str, Sequence[str]] = ("pgd",),
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
    on_batch: Optional[Callable[[int, bool], None]] = None,
) -> Optional[EvaluationReport]:
    """
    :func:`evaluate` split across the ranks of the initialised ``torch.distributed`` process group (torchrun, or
    ``torch.multiprocessing`` with ``init_process_group``): every rank calls it with the same arguments and runs its
    share of the example batches; rank 0 gathers the outcomes, runs the sanity checks and returns the report, equal
    example by example to a single process's with the same seed and batch size; the other ranks return ``None``.

    A rank that raises ends its process with that error; torchrun (and ``torch.multiprocessing.spawn``) then stop the
    others, so the run fails instead of waiting. A launcher of your own must do the same (end the process, or
    destroy the group): a rank that catches the error and stays alive leaves the others waiting in the final gather
    until the group's timeout. With ``checkpoint_dir`` each rank saves its finished batches there
    (a shared directory, or one per machine), and ``resume=True`` after a lost rank redoes only the unfinished ones.
    """
    import torch.distributed as dist  # pylint: disable=import-outside-toplevel

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("evaluate_distributed needs an initialised torch.distributed process group (use torchrun).")
    rank, world = dist.get_rank(), dist.get_world_size()
    t_start = time.time()
    plan = _plan(classifier, x, y, attacks, settings, eot, votes, seed, sanity_n, eps_curve, verbose, cascade, "batch")
    prints: List[Any] = [None] * world
    dist.all_gather_object(prints, (plan.fingerprint, plan.random))  # the randomness probe must agree too
    for other, value in enumerate(prints):
        if value != (plan.fingerprint, plan.random):
            raise ValueError(
                f"rank {other} evaluates other data, settings or weights than rank {rank}; every rank must be "
                "given the same arguments."
            )
    mine = owned_batches(len(plan.batches), (rank, world))
    progress = tqdm(total=len(mine) * (1 + len(plan.names)), desc=f"rank {rank}", disable=not verbose, leave=False)
    shard = _run_shard(plan, (rank, world), checkpoint_dir, resume, on_batch, progress)
    progress.close()
    gathered: Optional[List[Any]] = [None] * world if rank == 0 else None
    dist.gather_object(shard, gathered, dst=0)
    if rank != 0:
        return None
    merged = merge_shards(gathered or [])  # every rank ran the same plan (checked above): no second probe
    report = _finish(
        plan, merged, sanity, sanity_n, eps_curve, tqdm(total=4 if sanity else 0, disable=not verbose, leave=False)
    )
    # the split run's wall time, plus (after a resume) the longest any rank had spent on the batches it loaded
    report.time_s = time.time() - t_start + max(s.loaded_s for s in (gathered or []))
    return report
