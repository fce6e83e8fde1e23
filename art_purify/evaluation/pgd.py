"""First evaluation: ART's PGD (l_inf) against an ART classifier, with a terminal table and a JSON report."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """Outcome of :func:`evaluate_pgd`; ``clean_correct`` / ``robust_correct`` are per example."""

    n: int
    eps: float
    eps_step: float
    max_iter: int
    clean_accuracy: float
    robust_accuracy: float
    clean_time_s: float
    attack_time_s: float
    clean_correct: List[bool] = field(repr=False)
    robust_correct: List[bool] = field(repr=False)
    settings: Dict = field(default_factory=dict)
    clean_vote_margin: List[float] = field(default_factory=list, repr=False)
    adversarial_vote_margin: List[float] = field(default_factory=list, repr=False)

    def to_json(self) -> Dict:
        return asdict(self)


def _check_inputs(x: np.ndarray, y: np.ndarray, eps: float, clip_values) -> None:
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) array, got shape {x.shape}.")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}.")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf.")
    lo, hi = clip_values
    if x.min() < lo or x.max() > hi:
        raise ValueError(f"x has values in [{x.min():.3g}, {x.max():.3g}], outside clip_values [{lo}, {hi}].")
    if not 0 < eps <= hi - lo:
        raise ValueError(f"eps must lie in (0, {hi - lo}] (the data range), got {eps}.")


def evaluate_pgd(
    classifier,
    x: np.ndarray,
    y: np.ndarray,
    eps: float = 0.1,
    eps_step: Optional[float] = None,
    max_iter: int = 20,
    batch_size: int = 100,
    votes: int = 1,
    verbose: bool = True,
) -> EvaluationResult:
    """
    Clean and robust accuracy of an ART classifier under ART's l_inf :class:`ProjectedGradientDescent`.

    The attack starts at the clean input (no random start, so no global RNG is used) and is untargeted on the true
    labels.

    :param classifier: An ART ``PyTorchClassifier`` (with or without preprocessing defences).
    :param x: ``(N, C, H, W)`` inputs inside the classifier's ``clip_values``.
    :param y: ``(N,)`` integer labels.
    :param eps: l_inf budget in input units.
    :param eps_step: Step size (default ``eps / 4``).
    :param votes: Predictions (clean and adversarial) by majority vote over this many runs of a random defence.
                  With an EOT defence (``nb_eot > 1``) the attack's gradients are EOT averages: PGD-EOT.
    """
    from art.attacks.evasion import ProjectedGradientDescent

    clip_values = classifier.clip_values if classifier.clip_values is not None else (0.0, 1.0)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    _check_inputs(x, y, eps, clip_values)
    eps_step = eps / 4.0 if eps_step is None else float(eps_step)
    if max_iter <= 0:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter}.")

    from art_purify.evaluation.voting import majority_vote

    t0 = time.time()
    clean_pred, clean_margin, _ = majority_vote(classifier, x, votes, batch_size)
    clean_time = time.time() - t0
    attack = ProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps, eps_step=eps_step, max_iter=max_iter, num_random_init=0,
        batch_size=batch_size, verbose=verbose,
    )
    t0 = time.time()
    x_adv = attack.generate(x, y=y)
    adv_pred, adv_margin, _ = majority_vote(classifier, x_adv, votes, batch_size)
    attack_time = time.time() - t0
    if np.abs(x_adv - x).max() > eps + 1e-6:
        raise RuntimeError("the attack left the eps-ball; this is a bug")
    clean_correct = clean_pred == y
    robust_correct = clean_correct & (adv_pred == y)
    return EvaluationResult(
        n=len(y), eps=float(eps), eps_step=eps_step, max_iter=int(max_iter),
        clean_accuracy=float(clean_correct.mean()), robust_accuracy=float(robust_correct.mean()),
        clean_time_s=clean_time, attack_time_s=attack_time,
        clean_correct=clean_correct.tolist(), robust_correct=robust_correct.tolist(),
        settings={"attack": "ProjectedGradientDescent", "norm": "inf", "num_random_init": 0,
                  "batch_size": batch_size, "votes": votes},
        clean_vote_margin=clean_margin.tolist(),
        adversarial_vote_margin=adv_margin.tolist(),
    )


def format_table(rows: List[Dict[str, object]]) -> str:
    """A fixed-width text table from dicts with the same keys."""
    headers = list(rows[0])
    cells = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([line, sep, *body])


def evaluate_cli(args, command: str) -> str:
    """``art-purify evaluate``: the shipped (or named) models, an optional defence, ART's PGD (with EOT), a table
    and ``report.json``. Returns the text the command prints."""
    import art
    import torch

    from art_purify import __version__
    from art_purify.datasets import load_fashion_mnist
    from art_purify.evaluation.art_wrap import as_art_classifier
    from art_purify.utils import machine_description, resolve_device
    from art_purify.evaluation.defences import build_defence
    from art_purify.zoo import load_classifier, load_diffusion

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"output directory {out} cannot be written: {err}") from err
    device = resolve_device(args.device)
    x, y = load_fashion_mnist("test", source=args.data)
    if args.n <= 0 or args.n > len(y):
        raise ValueError(f"--n must lie in [1, {len(y)}] for data source {args.data!r}, got {args.n}.")
    x, y = x[: args.n], y[: args.n]
    if args.attack == "pgd-eot" and args.defence == "none":
        raise ValueError("--attack pgd-eot needs a random defence (--defence uniform or heterogeneous).")
    nb_eot = args.eot if args.attack == "pgd-eot" else 1
    model = load_classifier(args.model, device=device)
    unet, scheduler = load_diffusion(args.model, device=device) if args.defence != "none" else (None, None)
    defence = build_defence(args.defence, unet, scheduler, model, gradient=args.gradient, nb_eot=nb_eot,
                            seed=args.seed, device_type="gpu" if device.type == "cuda" else "cpu",
                            batch_size=args.batch_size)
    classifier = as_art_classifier(model, input_shape=x.shape[1:], nb_classes=10, device=device,
                                   preprocessing_defences=[defence] if defence is not None else None)
    votes = args.votes if defence is not None else 1
    result = evaluate_pgd(classifier, x, y, eps=args.eps, eps_step=args.eps_step, max_iter=args.max_iter,
                          batch_size=args.batch_size, votes=votes, verbose=not args.quiet)
    attack = "PGD-EOT" if nb_eot > 1 else "PGD"
    grad = f" {args.gradient}" if defence is not None else ""
    row = {
        "defence": args.defence,
        "attack": f"{attack}{grad} l_inf eps={result.eps:g} x{result.max_iter}" + (f" EOT{nb_eot}" if nb_eot > 1 else ""),
        "n": result.n,
        "votes": votes,
        "clean acc": f"{100 * result.clean_accuracy:.1f}%",
        "robust acc": f"{100 * result.robust_accuracy:.1f}%",
        "time": f"{result.clean_time_s + result.attack_time_s:.1f}s",
    }
    report = {
        "command": command,
        "model": args.model,
        "defence": args.defence,
        "gradient": args.gradient if defence is not None else None,
        "nb_eot": nb_eot,
        "votes": votes,
        "data": args.data,
        "seed": args.seed,
        "device": str(device),
        "versions": {"art_purify": __version__, "art": art.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
        "machine": machine_description(),
        "results": [result.to_json()],
    }
    path = out / "report.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return f"{format_table([row])}\nreport: {path}"
