# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""``art-purify evaluate`` as a function: the shipped (or named) models, an optional defence, the attack suite, a
table, a JSON report and a PNG figure. Keyword arguments only, so that it is callable without the command line."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

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
        probe = out / f".write-test-{os.getpid()}"  # per process: torchrun ranks share the folder
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"output directory {out} cannot be written: {err}") from err
    return out


def _check_generator_fits(generator: Any, shape: Sequence[int], origin: Any) -> None:
    config = getattr(generator, "config", {})
    if config.get("in_channels", shape[0]) != shape[0]:
        raise ValueError(f"{origin} takes {config['in_channels']}-channel images, the data has {shape[0]} channels.")
    if shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"the AToP purifier needs a height and width that are multiples of 4, got {shape[1:]}.")


def parse_factors(text: str) -> tuple:
    """``"0.5,2"`` -> ``(0.5, 2.0)``: the ``--eps-curve`` multiples of eps."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise ValueError(f"--eps-curve must be comma-separated multiples of eps, got {text!r}.") from err


@contextlib.contextmanager
def process_group(device: Any, timeout_min: float = 360.0) -> Iterator[Tuple[int, int, Any]]:
    """
    ``(rank, world_size, device)`` of this process: ``(0, 1, device)`` alone, or, under torchrun (``WORLD_SIZE`` >
    1) or inside a process group the caller initialised, the group's rank and size. A group it creates (NCCL on
    CUDA, with ``cuda:LOCAL_RANK`` as the rank's device; gloo on CPU) is destroyed on exit.

    :param timeout_min: How long a collective waits for the other ranks (the slowest rank's last batch); positive
                        (:func:`run_evaluate` checks it before any group is made).
    """
    import torch
    import torch.distributed as dist

    if not dist.is_available() or (int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not dist.is_initialized()):
        yield 0, 1, device
        return
    created = not dist.is_initialized()
    if created:
        backend = "gloo"
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if local >= torch.cuda.device_count():
                raise ValueError(
                    f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}; start at most "
                    "that many processes per node (--nproc-per-node)."
                )
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
            backend = "nccl"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_min))
    try:
        yield dist.get_rank(), dist.get_world_size(), device
    finally:
        if created:
            dist.destroy_process_group()


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
    temperature: float = AttackSettings.temperature,
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
        temperature=temperature,
    )
    return {
        "attacks": parse_attacks(pick(attacks, "attacks")),
        "settings": settings,
        "eot": pick(eot, "eot"),
        "votes": pick(votes, "votes"),
        "sanity_n": pick(sanity_n, "sanity_n"),
        "eps_curve": tuple(pick(eps_curve, "eps_curve")),
        "gradient": values.get("gradient", "exact"),
    }


def run_evaluate(  # pylint: disable=too-many-arguments,too-many-locals
    *,
    out: Union[str, Path],
    data: str = "embedded",
    n: int = 100,
    model: str = "fashion-mnist",
    defence: str = "none",
    gradient: Optional[str] = None,
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
    classifier: Optional[str] = None,
    classifier_weights: Optional[Union[str, Path]] = None,
    classifier_kwargs: Optional[Dict[str, Any]] = None,
    nb_classes: Optional[int] = None,
    clip_values: Tuple[float, float] = (0.0, 1.0),
    stages: Optional[Sequence[str]] = None,
    diffusion: Optional[Union[str, Path]] = None,
    atop: Optional[Union[str, Path]] = None,
    seeding: str = "batch",
    dist_timeout: float = 360.0,
    speed: Optional[Dict[str, Any]] = None,
    shard: Optional[Tuple[int, int]] = None,
    **options: Any,
) -> str:
    """
    Run ``art-purify evaluate`` and return the text it prints.

    :param out: Report directory (``report.json``, ``adversarial.npz``, ``report.png``, ``partial/``).
    :param data: Test data: any source of :func:`art_purify.datasets.load_dataset` (an ``.npz``, an IDX directory,
                 an image folder, or a Fashion-MNIST source); its values must lie in ``clip_values``.
    :param n: Number of test images (the first ``n``).
    :param model: Zoo name of the pieces not given explicitly (classifier, diffusion model, AToP purifier).
    :param defence: One of :data:`art_purify.evaluation.defences.DEFENCES`.
    :param gradient: One of :data:`art_purify.defences.preprocessor.GRADIENT_MODES` (default: the preset's, exact).
    :param search: Parameters of the reconstruction search (``sigma``, ``nb_noise``, ``max_iter``, ``step_size``,
                   ``radius``, ``rho``; ``None`` values keep the library defaults); only with
                   ``defence="reconstruction-search"``.
    :param transform: AToP's random transform (``"rt1"``, ``"rt2"``, ``"rt3"``; default rt2), only with the
                      defences ``random-masking``, ``atop`` and ``atop-pretrained``.
    :param options: The attack options of :func:`resolve_options` (``preset``, ``attacks``, ``eps``, ...).
    :param classifier: The user's classifier instead of the zoo's: ``"package.module:Factory"`` (with
                       ``classifier_weights``, a safetensors state dict, and ``classifier_kwargs``), a TorchScript
                       file, or a ``train-classifier`` output directory (see
                       :func:`art_purify.zoo.load_user_classifier`). Its number of classes is read from its output
                       on one input of the data's shape; ``nb_classes``, when given, must agree.
    :param clip_values: The classifier's input range; the data must lie in it.
    :param stages: Module names of the classifier whose activations make the heterogeneous defence's saliency
                   (default: the model's ``stage_names`` attribute).
    :param diffusion: A diffusers directory (``save_pretrained`` layout or ``train-diffusion`` output) for the
                      diffusion defences, instead of the zoo's.
    :param atop: A ``train-atop`` output directory for the AToP defences, instead of the zoo's purifier.
    :param seeding: ``"batch"`` (seeds per example batch) or ``"phase"`` (the seeding of ``report_version`` 1
                    reports); see :func:`art_purify.evaluation.evaluate`.
    :param speed: Speed options of the diffusion defences (``precision``, ``channels_last``, ``compile_unet``; ``None``
                  values keep the defaults), see :class:`~art_purify.defences.preprocessor.DiffusionPurificationPyTorch`.
    :param dist_timeout: Minutes a rank of a torchrun run waits for the others (see :func:`process_group`).
    :param shard: ``(rank, world)``: run only the example batches ``rank, rank + world, ...`` in this process, without
                  ``torch.distributed`` (one job of a SLURM array, or a queue of your own), saving them in
                  ``out/partial``; a last call without ``shard`` and with ``resume`` loads every batch, runs the
                  sanity checks and writes the report. Needs ``seeding="batch"``; not under ``torchrun``.
    :param command: The command line, recorded in the report.

    Under ``torchrun`` (``WORLD_SIZE`` > 1), every rank runs its share of the example batches on its own device
    (``cuda:LOCAL_RANK``, or the CPU with gloo) and rank 0 writes the report, equal example by example to a single
    process's; the other ranks return one line saying so.
    """
    from art_purify.evaluation.defences import ATOP_DEFENCES, MODEL_FREE_DEFENCES
    from art_purify.evaluation.sharding import SEEDINGS, check_shard
    from art_purify.utils import resolve_device

    resolved = resolve_options(**options)
    gradient = resolved["gradient"] if gradient is None else gradient
    search = {k: v for k, v in (search or {}).items() if v is not None}
    if search and defence != "reconstruction-search":
        raise ValueError(
            f"{SEARCH_ERROR_PREFIX}{', '.join(sorted(search))} only apply to defence 'reconstruction-search', "
            f"not {defence!r}."
        )
    if transform is not None and defence not in ("random-masking", *ATOP_DEFENCES):
        raise ValueError(f"--transform only applies to the AToP defences, not {defence!r}.")
    uses_diffusion = defence not in MODEL_FREE_DEFENCES and defence not in ATOP_DEFENCES
    speed = {k: v for k, v in (speed or {}).items() if v is not None and v != "float32"}
    if speed and defence not in ("uniform", "heterogeneous"):
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(speed))
        raise ValueError(f"{flags} only apply to the diffusion defences uniform and heterogeneous, not {defence!r}.")
    for given, flag, applies in (
        (diffusion, "--diffusion", uses_diffusion),
        (atop, "--atop", defence in ATOP_DEFENCES),
        (stages, "--stages", defence == "heterogeneous"),
    ):
        if given is not None and not applies:
            raise ValueError(f"{flag} does not apply to defence {defence!r}.")
    if len(clip_values) != 2 or not float(clip_values[0]) < float(clip_values[1]):  # NaN fails too
        raise ValueError(f"--clip-values must be MIN MAX with MIN < MAX, got {tuple(clip_values)}.")
    if seeding not in SEEDINGS:
        raise ValueError(f"--seeding must be one of {', '.join(SEEDINGS)}, got {seeding!r}.")
    if not math.isfinite(dist_timeout) or dist_timeout <= 0:
        raise ValueError(f"--dist-timeout must be a positive number of minutes, got {dist_timeout}.")
    if shard is not None:
        shard = check_shard(shard)
        if seeding != "batch":
            raise ValueError("--shard needs --seeding batch (per-batch seeds).")
    with process_group(resolve_device(device), dist_timeout) as (rank, world, dev):
        if world > 1 and seeding != "batch":
            raise ValueError("a run split across ranks needs --seeding batch (per-batch seeds).")
        if world > 1 and shard is not None:
            raise ValueError("--shard is for runs outside torchrun; under torchrun the ranks split the batches.")
        return _run_evaluate(
            out=out,
            data=data,
            n=n,
            model=model,
            defence=defence,
            gradient=gradient,
            seed=seed,
            dev=dev,
            rank_world=(rank, world),
            cascade=cascade,
            sanity=sanity,
            figure=figure,
            resume=resume,
            verbose=verbose,
            command=command,
            search=search,
            transform=transform,
            classifier=classifier,
            classifier_weights=classifier_weights,
            classifier_kwargs=classifier_kwargs,
            nb_classes=nb_classes,
            clip_values=clip_values,
            stages=stages,
            diffusion=diffusion,
            atop=atop,
            seeding=seeding,
            resolved=resolved,
            options=options,
            speed=speed,
            shard=shard,
        )


def _run_evaluate(  # pylint: disable=too-many-arguments,too-many-locals,too-many-branches,too-many-statements
    *,
    out: Union[str, Path],
    data: str,
    n: int,
    model: str,
    defence: str,
    gradient: str,
    seed: int,
    dev: Any,
    rank_world: Tuple[int, int],
    cascade: bool,
    sanity: bool,
    figure: bool,
    resume: bool,
    verbose: bool,
    command: Optional[str],
    search: Dict[str, Any],
    transform: Optional[str],
    classifier: Optional[str],
    classifier_weights: Optional[Union[str, Path]],
    classifier_kwargs: Optional[Dict[str, Any]],
    nb_classes: Optional[int],
    clip_values: Tuple[float, float],
    stages: Optional[Sequence[str]],
    diffusion: Optional[Union[str, Path]],
    atop: Optional[Union[str, Path]],
    seeding: str,
    resolved: Dict[str, Any],
    options: Dict[str, Any],
    speed: Dict[str, Any],
    shard: Optional[Tuple[int, int]] = None,
) -> str:
    """:func:`run_evaluate` on this rank's device (``rank_world``: this process's rank and the number of ranks)."""
    import torch

    from art_purify.datasets import CLASSES, check_range, load_dataset
    from art_purify.evaluation.defences import ATOP_DEFENCES, MODEL_FREE_DEFENCES, build_defence
    from art_purify.evaluation.report import save_figure, save_report, summary_table
    from art_purify.evaluation.suite import evaluate, evaluate_distributed, evaluate_shard
    from art_purify.models import as_art_classifier, check_unet_fits
    from art_purify.zoo import load_atop, load_diffusion, load_diffusion_dir
    from art_purify.zoo.user import check_stage_names, classes_of, load_atop_dir, resolve_classifier

    rank, world = rank_world
    uses_diffusion = defence not in MODEL_FREE_DEFENCES and defence not in ATOP_DEFENCES
    x, y = load_dataset(data, "test")
    if n <= 0 or n > len(y):
        raise ValueError(f"--n must lie in [1, {len(y)}] for data source {data!r}, got {n}.")
    x, y = x[:n], y[:n]
    check_range(x, clip_values, f"data {data}")
    net = resolve_classifier(classifier, classifier_weights, classifier_kwargs, model, dev)
    classes = classes_of(net, x, y, dev, nb_classes, f"data {data}")
    if defence == "heterogeneous" and stages is None and getattr(net, "stage_names", None) is None:
        raise ValueError(
            "the heterogeneous defence needs the classifier's stage names for its saliency: give --stages "
            "(module names, e.g. layer1,layer2,layer3,layer4 for a torchvision ResNet)."
        )
    if stages is not None or defence == "heterogeneous":
        check_stage_names(net, stages if stages is not None else getattr(net, "stage_names"))
    unet, scheduler = (None, None)
    if uses_diffusion:
        unet, scheduler = load_diffusion(model, device=dev) if diffusion is None else load_diffusion_dir(diffusion, dev)
        check_unet_fits(unet, x.shape[1:], diffusion or f"zoo diffusion model {model!r}")
    defence_kwargs: Dict[str, Any] = {}
    generator = None
    if defence in ATOP_DEFENCES:
        pretrained = defence == "atop-pretrained"
        generator = load_atop(model, pretrained, dev) if atop is None else load_atop_dir(atop, pretrained, dev)
        _check_generator_fits(generator, x.shape[1:], atop or f"zoo AToP purifier {model!r}")
    if defence == "random-masking" or generator is not None:
        defence_kwargs = {"transform": transform or "rt2", "generator": generator}
    if defence == "heterogeneous" and stages is not None:
        defence_kwargs["stage_names"] = list(stages)
    if tuple(clip_values) != (0.0, 1.0) and defence != "none":
        defence_kwargs["clip_values"] = tuple(clip_values)
    defence_kwargs.update(speed)

    out = check_out_dir(out)  # after every check of the pieces: a refused call leaves no new folder
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
            **defence_kwargs,
            **search,
        )
    except ValueError as err:
        if defence == "reconstruction-search":  # its max_iter is not the attack's: say whose parameter it is
            raise ValueError(f"{SEARCH_ERROR_PREFIX}{err}") from err
        raise
    art_classifier = as_art_classifier(
        net,
        input_shape=x.shape[1:],
        nb_classes=classes,
        clip_values=clip_values,
        device=dev,
        preprocessing_defences=[built] if built is not None else None,
    )
    common: Dict[str, Any] = {
        "eot": resolved["eot"],
        "votes": resolved["votes"],
        "seed": seed,
        "sanity": sanity,
        "sanity_n": resolved["sanity_n"],
        "eps_curve": resolved["eps_curve"],
        "checkpoint_dir": out / "partial",
        "resume": resume,
        "verbose": verbose,
        "cascade": cascade,
    }
    if shard is not None:
        unsharded = ("sanity", "sanity_n", "eps_curve")  # the last, unsharded call runs those
        mine = {k: v for k, v in common.items() if k not in unsharded}
        done = evaluate_shard(art_classifier, x, y, shard, resolved["attacks"], resolved["settings"], **mine)
        return (
            f"shard {shard[0]} of {shard[1]}: batches {sorted(done.batches)} of {done.n_batches} are done (in "
            f"{out / 'partial'}); run again without --shard and with --resume to write the report"
        )
    if world > 1:
        report = evaluate_distributed(art_classifier, x, y, resolved["attacks"], resolved["settings"], **common)
    else:
        report = evaluate(art_classifier, x, y, resolved["attacks"], resolved["settings"], seeding=seeding, **common)
    if report is None:  # a rank other than 0 of a torchrun run
        return f"rank {rank} of {world}: its example batches are done (in {out / 'partial'}); rank 0 writes the report"
    extra = {
        "command": command,
        "model": model,  # the zoo entry of every piece not given explicitly
        "classifier": None if classifier is None else str(classifier),
        "classifier_weights": None if classifier_weights is None else str(classifier_weights),
        "diffusion": None if diffusion is None else str(diffusion),
        "atop": None if atop is None else str(atop),
        "clip_values": list(clip_values),
        "defence": defence,
        "gradient": gradient if built is not None else None,
        "transform": (transform or "rt2") if defence in ("random-masking", *ATOP_DEFENCES) else None,
        "preset": options.get("preset", "quick"),
        "data": data,
        "seed": seed,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "world_size": world,
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
        title = f"{model if classifier is None else classifier}, defence {defence}"
        title += f" ({gradient} gradient)" if built is not None else ""
        names = CLASSES if classes == len(CLASSES) and classifier is None else [str(k) for k in range(classes)]
        path = save_figure(report, art_classifier, x, out / "report.png", names, title=title)
        lines.append(f"figure: {path}")
    return "\n".join(lines)
