# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""``art-purify evaluate`` as a function: the shipped (or named) models, an optional defence, the attack suite, a
table, a JSON report and a PNG figure. Keyword arguments only, so that it is callable without the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from art_purify.evaluation.attacks import AttackSettings, parse_attacks
from art_purify.evaluation.suite import PRESETS

#: Prefix of errors raised by the reconstruction search's parameters (the command line names its flags).
SEARCH_ERROR_PREFIX = "reconstruction search: "


def check_out_dir(out: Union[str, Path]) -> Path:
    """Create ``out`` and make sure it can be written, or raise ``ValueError`` naming it."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"output directory {out} cannot be written: {err}") from err
    return out


def parse_factors(text: str) -> tuple:
    """``"0.5,2"`` -> ``(0.5, 2.0)``: the ``--eps-curve`` multiples of eps."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise ValueError(f"--eps-curve must be comma-separated multiples of eps, got {text!r}.") from err


def resolve_options(  # pylint: disable=too-many-arguments
    *,
    preset: str = "quick",
    attacks: Optional[Union[str, Sequence[str]]] = None,
    eps: float = 0.1,
    eps_step: Optional[float] = None,
    eps_l2: float = 1.5,
    max_iter: Optional[int] = None,
    restarts: Optional[int] = None,
    square_queries: Optional[int] = None,
    batch_size: int = 64,
    eot: Optional[int] = None,
    votes: Optional[int] = None,
    sanity_n: Optional[int] = None,
    eps_curve: Optional[Sequence[float]] = None,
    ere_weight: float = AttackSettings.ere_weight,
) -> Dict[str, Any]:
    """Fill the options left as ``None`` from the preset (``PRESETS[preset]``); an explicit 0 is kept (and rejected
    where it is not allowed)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}.")
    values = PRESETS[preset]

    def pick(value, key):
        return values[key] if value is None else value

    settings = AttackSettings(
        eps=eps,
        eps_step=eps * values["step_ratio"] if eps_step is None else eps_step,
        max_iter=pick(max_iter, "max_iter"),
        restarts=pick(restarts, "restarts"),
        eps_l2=eps_l2,
        square_queries=pick(square_queries, "square_queries"),
        batch_size=batch_size,
        ere_weight=ere_weight,
    )
    return {
        "attacks": parse_attacks(pick(attacks, "attacks")),
        "settings": settings,
        "eot": pick(eot, "eot"),
        "votes": pick(votes, "votes"),
        "sanity_n": pick(sanity_n, "sanity_n"),
        "eps_curve": tuple(pick(eps_curve, "eps_curve")),
    }


def run_evaluate(  # pylint: disable=too-many-arguments,too-many-locals
    *,
    out: Union[str, Path],
    data: str = "embedded",
    n: int = 100,
    model: str = "fashion-mnist",
    defence: str = "none",
    gradient: str = "exact",
    seed: int = 0,
    device: str = "auto",
    cascade: bool = False,
    sanity: bool = True,
    figure: bool = True,
    resume: bool = False,
    verbose: bool = True,
    command: Optional[str] = None,
    search: Optional[Dict[str, Any]] = None,
    transform: Optional[str] = None,
    **options: Any,
) -> str:
    """
    Run ``art-purify evaluate`` and return the text it prints.

    :param out: Report directory (``report.json``, ``adversarial.npz``, ``report.png``, ``partial/``).
    :param data: Fashion-MNIST source (see :func:`art_purify.datasets.load_fashion_mnist`).
    :param n: Number of test images (the first ``n``).
    :param model: Zoo name of the classifier and diffusion model.
    :param defence: One of :data:`art_purify.evaluation.defences.DEFENCES`.
    :param gradient: One of :data:`art_purify.defences.preprocessor.GRADIENT_MODES`.
    :param search: Parameters of the reconstruction search (``sigma``, ``nb_noise``, ``max_iter``, ``step_size``,
                   ``radius``, ``rho``; ``None`` values keep the library defaults); only with
                   ``defence="reconstruction-search"``.
    :param transform: AToP's random transform (``"rt1"``, ``"rt2"``, ``"rt3"``; default rt2), only with the
                      defences ``random-masking``, ``atop`` and ``atop-pretrained``.
    :param options: The attack options of :func:`resolve_options` (``preset``, ``attacks``, ``eps``, ...).
    :param command: The command line, recorded in the report.
    """
    import torch

    from art_purify.datasets import CLASSES, load_fashion_mnist
    from art_purify.evaluation.defences import ATOP_DEFENCES, MODEL_FREE_DEFENCES, build_defence
    from art_purify.evaluation.report import save_figure, save_report, summary_table
    from art_purify.evaluation.suite import evaluate
    from art_purify.models import as_art_classifier
    from art_purify.utils import resolve_device
    from art_purify.zoo import load_atop, load_classifier, load_diffusion

    resolved = resolve_options(**options)
    search = {k: v for k, v in (search or {}).items() if v is not None}
    if search and defence != "reconstruction-search":
        raise ValueError(
            f"{SEARCH_ERROR_PREFIX}{', '.join(sorted(search))} only apply to defence 'reconstruction-search', "
            f"not {defence!r}."
        )
    if transform is not None and defence not in ("random-masking", *ATOP_DEFENCES):
        raise ValueError(f"--transform only applies to the AToP defences, not {defence!r}.")
    out = check_out_dir(out)
    dev = resolve_device(device)
    x, y = load_fashion_mnist("test", source=data)
    if n <= 0 or n > len(y):
        raise ValueError(f"--n must lie in [1, {len(y)}] for data source {data!r}, got {n}.")
    x, y = x[:n], y[:n]
    net = load_classifier(model, device=dev)
    diffusion = defence not in MODEL_FREE_DEFENCES and defence not in ATOP_DEFENCES
    unet, scheduler = load_diffusion(model, device=dev) if diffusion else (None, None)
    generator = (
        load_atop(model, pretrained=defence == "atop-pretrained", device=dev) if defence in ATOP_DEFENCES else None
    )
    atop_kwargs: Dict[str, Any] = {}
    if defence == "random-masking" or generator is not None:
        atop_kwargs = {"transform": transform or "rt2", "generator": generator}
    try:
        built = build_defence(
            defence,
            unet,
            scheduler,
            net,
            gradient=gradient,
            seed=seed,
            device_type="gpu" if dev.type == "cuda" else "cpu",
            batch_size=resolved["settings"].batch_size,
            **atop_kwargs,
            **search,
        )
    except ValueError as err:
        if defence == "reconstruction-search":  # its max_iter is not the attack's: say whose parameter it is
            raise ValueError(f"{SEARCH_ERROR_PREFIX}{err}") from err
        raise
    classifier = as_art_classifier(
        net,
        input_shape=x.shape[1:],
        nb_classes=len(CLASSES),
        device=dev,
        preprocessing_defences=[built] if built is not None else None,
    )
    report = evaluate(
        classifier,
        x,
        y,
        resolved["attacks"],
        resolved["settings"],
        eot=resolved["eot"],
        votes=resolved["votes"],
        seed=seed,
        sanity=sanity,
        sanity_n=resolved["sanity_n"],
        eps_curve=resolved["eps_curve"],
        checkpoint_dir=out / "partial",
        resume=resume,
        verbose=verbose,
        cascade=cascade,
    )
    extra = {
        "command": command,
        "model": model,
        "defence": defence,
        "gradient": gradient if built is not None else None,
        "transform": (transform or "rt2") if defence in ("random-masking", *ATOP_DEFENCES) else None,
        "preset": options.get("preset", "quick"),
        "data": data,
        "seed": seed,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
    }
    json_path = save_report(report, out / "report.json", extra)
    arrays: Dict[str, Any] = {"x": x, "y": y, **{k.replace("-", "_"): v for k, v in report.x_adv.items()}}
    np.savez_compressed(out / "adversarial.npz", **arrays)
    lines = [summary_table(report, defence), f"report: {json_path}"]
    stale = out / "report.png"
    if not figure and stale.exists():  # a figure of an earlier run beside this run's report would mislead
        stale.unlink()
        lines.append(f"removed {stale} (left by an earlier run; this run has --no-figure)")
    if figure:
        title = f"{model}, defence {defence}" + (f" ({gradient} gradient)" if built is not None else "")
        path = save_figure(report, classifier, x, out / "report.png", CLASSES, title=title)
        lines.append(f"figure: {path}")
    return "\n".join(lines)
