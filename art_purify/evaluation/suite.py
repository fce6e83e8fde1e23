"""
The evaluation suite: several ART attacks against one (defended) ART classifier, per-example worst case, majority
vote, sanity checks and an accuracy-against-eps curve.

Reproducibility: every phase (clean votes, each attack, each sanity run) runs with seeds derived from ``seed``:
art_purify defences get the phase seed through ``set_params(seed=...)`` (their previous parameters are restored
afterwards), and ART's attacks, which draw from numpy's global generator, run with numpy's global state seeded for
the phase and restored to what it was afterwards; torch's global generator is forked. The caller's random state is
therefore left as it was, and the same seed gives the same per-example outcomes on the same device.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from art_purify.evaluation.attacks import (
    ATTACKS,
    LABELS,
    WHITE_BOX,
    AttackSettings,
    build_attack,
    defences_of,
    parse_attacks,
    straight_through,
)
from art_purify.evaluation.voting import majority_vote

logger = logging.getLogger(__name__)

#: Presets: ``quick`` fits a few minutes on a 2-core CPU; ``paper`` is Lee & Kim's protocol (200 iterations x 20 EOT
#: samples, step 0.007 at eps 8/255, scaled to the chosen eps, majority vote over 20 purifications).
PRESETS: Dict[str, Dict] = {
    "quick": {"max_iter": 10, "eot": 2, "votes": 3, "restarts": 0, "step_ratio": 0.25, "attacks": ["pgd"],
              "sanity_n": 8, "square_queries": 50, "eps_curve": ()},
    "paper": {"max_iter": 200, "eot": 20, "votes": 20, "restarts": 0, "step_ratio": 0.007 / (8 / 255),
              "attacks": ["pgd"], "sanity_n": 32, "square_queries": 1000, "eps_curve": (0.5, 2.0)},
}


@dataclass
class AttackOutcome:
    """One attack's result: majority-vote predictions on its adversarial examples, per example."""

    name: str
    label: str
    prediction: List[int]
    vote_margin: List[float]
    robust: List[bool]
    robust_accuracy: float
    time_s: float
    #: With ``cascade``, the examples this attack was run on (those every earlier attack failed on); ``None`` when
    #: it ran on every example. Examples it did not attack have prediction -1 and a NaN margin.
    attacked: Optional[List[bool]] = None


@dataclass
class SanityCheck:
    """One sanity check: ``passed`` is ``None`` when the check does not apply to this run."""

    name: str
    passed: Optional[bool]
    detail: str


@dataclass
class EvaluationReport:
    """Everything one evaluation measured; :meth:`to_json` gives the JSON report (adversarial images excluded)."""

    n: int
    labels: List[int]
    settings: Dict
    random_defence: bool
    clean_prediction: List[int]
    clean_vote_margin: List[float]
    clean_correct: List[bool]
    clean_accuracy: float
    attacks: Dict[str, AttackOutcome]
    robust: List[bool]
    robust_accuracy: float
    checks: List[SanityCheck] = field(default_factory=list)
    eps_curve: List[Dict] = field(default_factory=list)
    time_s: float = 0.0
    x_adv: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def warnings(self) -> List[SanityCheck]:
        return [c for c in self.checks if c.passed is False]

    def to_json(self) -> Dict:
        data = asdict(self)
        data.pop("x_adv")
        data["per_example"] = [
            {
                "index": i,
                "label": self.labels[i],
                "clean_prediction": self.clean_prediction[i],
                "clean_vote_margin": self.clean_vote_margin[i],
                "robust": self.robust[i],
                "attacks": {
                    name: {"prediction": o.prediction[i], "vote_margin": o.vote_margin[i], "robust": o.robust[i],
                           **({} if o.attacked is None else {"attacked": o.attacked[i]})}
                    for name, o in self.attacks.items()
                },
            }
            for i in range(self.n)
        ]
        return data


def _phase_seed(seed: int, phase: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(phase)]).generate_state(1)[0])


@contextlib.contextmanager
def _defence_params(classifier, **params) -> Iterator[None]:
    """Temporarily set ``params`` on every defence of ``classifier`` that declares them in its ``params``."""
    saved = []
    try:
        for defence in defences_of(classifier):
            supported = {k: v for k, v in params.items() if k in getattr(defence, "params", [])}
            if supported:
                saved.append((defence, {k: getattr(defence, k) for k in supported}))
                defence.set_params(**supported)
        yield
    finally:
        for defence, old in saved:
            defence.set_params(**old)


@contextlib.contextmanager
def seeded_phase(classifier, seed: int, phase: int, nb_eot: Optional[int] = None) -> Iterator[None]:
    """Run a phase with seeds derived from ``(seed, phase)``; the global numpy and torch states are restored after."""
    value = _phase_seed(seed, phase)
    state = np.random.get_state()
    params = {"seed": value}
    if nb_eot is not None:
        params["nb_eot"] = int(nb_eot)
    try:
        np.random.seed(value)
        cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=cuda), _defence_params(classifier, **params):
            torch.manual_seed(value)
            yield
    finally:
        np.random.set_state(state)


def _check_data(classifier, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) array, got shape {x.shape}.")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}.")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf.")
    if y.ndim != 1 or y.min() < 0 or y.max() >= classifier.nb_classes:
        raise ValueError(f"y must hold integer labels in [0, {classifier.nb_classes}), got shape {y.shape}.")
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


class _Runner:
    """Runs attacks and majority votes with the evaluation's seeds, EOT and votes."""

    def __init__(self, classifier, settings: AttackSettings, eot: int, votes: int, seed: int, verbose: bool):
        self.classifier = classifier
        self.settings = settings
        self.eot = eot
        self.votes = votes
        self.seed = seed
        self.verbose = verbose
        self.phase = 0

    def vote(self, x: np.ndarray):
        self.phase += 1
        with seeded_phase(self.classifier, self.seed, self.phase):
            prediction, margin, _ = majority_vote(self.classifier, x, self.votes, self.settings.batch_size, self.verbose)
        return prediction, margin

    def attack(self, name: str, x: np.ndarray, y: np.ndarray, settings: Optional[AttackSettings] = None):
        settings = settings or self.settings
        self.phase += 1
        with seeded_phase(self.classifier, self.seed, self.phase, nb_eot=self.eot):
            attack = build_attack(name, self.classifier, settings, verbose=self.verbose)
            context = straight_through(self.classifier, self.eot) if name == "bpda" else contextlib.nullcontext()
            with context:
                x_adv = attack.generate(x, y=y).astype(x.dtype)
        norm_ok = (np.abs(x_adv - x).max() <= settings.eps + 1e-5 if name != "pgd-l2"
                   else np.sqrt(((x_adv - x) ** 2).reshape(len(x), -1).sum(1)).max() <= settings.eps_l2 + 1e-4)
        if not norm_ok:
            raise RuntimeError(f"attack {name!r} left its eps-ball; this is a bug")
        return x_adv


def _fingerprint(x, y, names, settings, eot, votes, seed, classifier, cascade=False) -> str:
    """A hash of everything that decides the outcome of the attack phases."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    config = {"attacks": names, "settings": settings.to_json(), "eot": eot, "votes": votes, "seed": seed,
              "defences": [[type(d).__name__, _params_of(d)] for d in defences_of(classifier)]}
    if cascade:
        config["cascade"] = True
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    modules = [classifier.model] + [m for d in defences_of(classifier) for m in vars(d).values()
                                    if isinstance(m, torch.nn.Module)]
    for module in modules:  # the weights of the classifier and of the defences' networks
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _PhaseStore:
    """Finished phases of an evaluation on disk (``clean.npz``, ``<attack>.npz``, ``meta.json``)."""

    def __init__(self, directory: Optional[Union[str, Path]], fingerprint: str, resume: bool):
        self.directory = None if directory is None else Path(directory)
        if self.directory is None:
            if resume:
                raise ValueError("resume=True needs a checkpoint_dir.")
            return
        meta = self.directory / "meta.json"
        if resume:
            if not meta.is_file():
                raise FileNotFoundError(f"resume was asked for but there is no checkpoint at {meta}.")
            if json.loads(meta.read_text()).get("fingerprint") != fingerprint:
                raise ValueError(f"the checkpoint in {self.directory} was made with other data or settings; run "
                                 "without resume to start again.")
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in ("clean", *ATTACKS):  # only this module's own files
            self._path(name).unlink(missing_ok=True)
        meta.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.npz"

    def load(self, name: str) -> Optional[Dict[str, np.ndarray]]:
        if self.directory is None or not self._path(name).is_file():
            return None
        with np.load(self._path(name)) as data:
            return {k: data[k] for k in data.files}

    def save(self, name: str, **arrays) -> None:
        if self.directory is None:
            return
        tmp = self.directory / f".{name}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(self._path(name))


def _tolerance(random: bool, m: int) -> float:
    """How much two accuracies on ``m`` examples may differ by chance: voting noise of random defences, or one
    example for deterministic ones (ART's attacks return their last iterate, which can flip back)."""
    return max(0.03, 2.0 / m) if random else 1.0 / m


def evaluate(
    classifier,
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
    lo, hi = _clip(classifier)
    if not 0 < settings.eps <= hi - lo:
        raise ValueError(f"eps must lie in (0, {hi - lo:g}] (the data range of clip_values), got {settings.eps}.")
    for name, value in (("eot", eot), ("votes", votes), ("sanity_n", sanity_n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    probe = x[: min(len(x), 8)]
    with seeded_phase(classifier, seed, 0):
        random = _is_random(classifier, probe, settings.batch_size)
    eff_eot, eff_votes = (eot, votes) if random else (1, 1)
    runner = _Runner(classifier, settings, eff_eot, eff_votes, seed, verbose)

    if any(not np.isfinite(f) or f <= 0 for f in eps_curve):
        raise ValueError(f"eps_curve must hold positive multiples of eps, got {tuple(eps_curve)!r}.")
    steps = len(names) + 1 + (4 if sanity else 0)
    bar = tqdm(total=steps, desc="evaluate", disable=not verbose, leave=False)
    store = _PhaseStore(checkpoint_dir, _fingerprint(x, y, names, settings, eot, votes, seed, classifier, cascade),
                        resume)
    carried = 0.0  # seconds spent on the phases loaded from the checkpoint, so that time_s is the whole run's
    saved = store.load("clean")
    if saved is None:
        t0 = time.time()
        clean_pred, clean_margin = runner.vote(x)
        store.save("clean", prediction=clean_pred, margin=clean_margin, time_s=np.float64(time.time() - t0))
    else:
        clean_pred, clean_margin = saved["prediction"], saved["margin"]
        carried += float(saved.get("time_s", 0.0))
        runner.phase += 1
    clean_correct = clean_pred == y
    bar.update()
    outcomes: Dict[str, AttackOutcome] = {}
    x_adv_all: Dict[str, np.ndarray] = {}
    robust_so_far = clean_correct.copy()
    for name in names:
        bar.set_postfix_str(name)
        todo = robust_so_far.copy() if cascade else np.ones(len(y), dtype=bool)
        saved = store.load(name)
        if saved is None:
            t0 = time.time()
            x_adv, prediction, margin = x.copy(), np.full(len(y), -1, dtype=np.int64), np.full(len(y), np.nan)
            if todo.any():
                x_adv[todo] = runner.attack(name, x[todo], y[todo])
                prediction[todo], margin[todo] = runner.vote(x_adv[todo])
            else:
                runner.phase += 2
            elapsed = time.time() - t0
            store.save(name, x_adv=x_adv, prediction=prediction, margin=margin, time_s=np.float64(elapsed),
                       attacked=todo)
        else:  # done before an interruption: same phases, same seeds
            x_adv, prediction, margin, elapsed = (saved["x_adv"], saved["prediction"], saved["margin"],
                                                  float(saved["time_s"]))
            carried += elapsed
            runner.phase += 2
        robust = clean_correct & todo & (prediction == y)
        robust_so_far &= robust
        outcomes[name] = AttackOutcome(name, LABELS[name], prediction.tolist(), margin.tolist(), robust.tolist(),
                                       float(robust.mean()), elapsed, todo.tolist() if cascade else None)
        x_adv_all[name] = x_adv
        bar.update()
    robust_all = clean_correct.copy()
    for outcome in outcomes.values():
        robust_all &= np.asarray(outcome.robust)

    report = EvaluationReport(
        n=len(y), labels=y.tolist(),
        settings={"attacks": names, **settings.to_json(), "eot": eff_eot, "votes": eff_votes, "eot_requested": eot,
                  "votes_requested": votes, "seed": seed, "sanity_n": min(sanity_n, len(y)),
                  "eps_curve_factors": [float(f) for f in eps_curve],
                  "cascade": bool(cascade), "clip_values": [lo, hi], "defences": [type(d).__name__ for d in defences_of(classifier)],
                  "defence_params": [_params_of(d) for d in defences_of(classifier)]},
        random_defence=random, clean_prediction=clean_pred.tolist(), clean_vote_margin=clean_margin.tolist(),
        clean_correct=clean_correct.tolist(), clean_accuracy=float(clean_correct.mean()), attacks=outcomes,
        robust=robust_all.tolist(), robust_accuracy=float(robust_all.mean()), x_adv=x_adv_all,
    )
    if sanity:
        from art_purify.evaluation.sanity import run_sanity_checks

        run_sanity_checks(report, runner, x[:sanity_n], y[:sanity_n], bar)
    bar.close()
    report.time_s = time.time() - t_start + carried
    return report


def _params_of(defence) -> Dict:
    """JSON-friendly values of a defence's declared parameters."""
    out = {}
    for key in getattr(defence, "params", []):
        value = getattr(defence, key, None)
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            out[key] = list(value)
        else:
            out[key] = type(value).__name__
    return out


def replace_settings(settings: AttackSettings, eps: float, max_iter: Optional[int] = None) -> AttackSettings:
    """The same settings at another l_inf eps (step scaled in proportion) and optionally another iteration count."""
    ratio = settings.eps_step / settings.eps
    return dataclasses.replace(settings, eps=float(eps), eps_step=float(eps) * ratio,
                               max_iter=settings.max_iter if max_iter is None else int(max_iter))


def primary_gradient_attack(names: Sequence[str]) -> str:
    """The gradient used by the sanity runs: the real gradient (``pgd``) when the run has a white-box attack,
    ``bpda`` when it only has BPDA, otherwise ``pgd``."""
    if any(n in WHITE_BOX for n in names) or "bpda" not in names:
        return "pgd"
    return "bpda"


def cascade_order(names: Sequence[str]) -> List[str]:
    """The order in which ``cascade`` runs the attacks: real-gradient attacks first (in the given order), then BPDA,
    then the black-box Square attack."""
    rank = {"bpda": 1, "square": 2}
    return sorted(names, key=lambda n: rank.get(n, 0))
