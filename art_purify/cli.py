# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The ``art-purify`` command line: training the default models and evaluating defences."""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from art_purify import __version__

logger = logging.getLogger("art_purify")


def _data_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--data",
        default=default,
        help="Data: an .npz file (x, y; or x_train/y_train and x_test/y_test), a directory of MNIST-style IDX "
        "files (train-*, t10k-*), an image folder with one sub-folder per class, or Fashion-MNIST: 'embedded' "
        "(first 1,000 test images), 'auto' (Debian's directory if present, else embedded) or 'download' "
        f"(torchvision, explicit). Default: {default}.",
    )


def _run_args(parser: argparse.ArgumentParser) -> None:
    """Options every training command shares: data, seed, device, output, resume, threads, progress."""
    from art_purify.datasets import DEBIAN_DIR

    _data_arg(parser, str(DEBIAN_DIR))
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random draw (default 0).")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu' or 'cuda[:N]'.")
    parser.add_argument("--out", required=True, type=Path, help="Output directory (checkpoint and artefacts).")
    parser.add_argument("--resume", action="store_true", help="Continue from OUT/checkpoint.pt.")
    parser.add_argument("--n-train", type=int, help="Use only the first N training images (for quick runs).")
    parser.add_argument("--num-threads", type=int, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)  # simulated interruption, for tests
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")


def _config_option(parser: argparse.ArgumentParser, flag: str, config: type, name: str, text: str) -> None:
    """An option whose default (and the default printed in ``--help``) is the config dataclass's own."""
    default = getattr(config, name)
    kind = float if isinstance(default, float) else int
    parser.add_argument(flag, dest=name, type=kind, default=default, help=f"{text} (default {default}).")


#: ``evaluate``'s options of the reconstruction search: flag, parameter of ``ReconstructionSearchPyTorch``, help.
SEARCH_OPTIONS = (
    ("--sigma", "sigma", "Noise level of the ERE in model space ([-1, 1] data)"),
    ("--nb-noise", "nb_noise", "Fixed noise draws of the ERE"),
    ("--search-iter", "max_iter", "Search steps"),
    ("--search-step", "step_size", "Mean per-pixel move of a search step"),
    ("--radius", "radius", "Radius of the search ball around the input (l_inf, pixel units)"),
    ("--rho", "rho", "SAM radius (0: plain ERE descent)"),
    ("--unrolled-steps", "unrolled_steps", "Last search steps unrolled by --gradient truncated"),
)


def _search_option(parser: argparse.ArgumentParser, flag: str, name: str, text: str) -> None:
    """An option of the reconstruction search; the default printed is the library's, and only a value given on the
    command line reaches the defence (``None`` otherwise)."""
    import inspect

    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch

    default = inspect.signature(ReconstructionSearchPyTorch.__init__).parameters[name].default
    kind = float if isinstance(default, float) else int
    parser.add_argument(
        flag,
        dest=f"search_{name}",
        type=kind,
        metavar=flag.lstrip("-").upper().replace("-", "_"),
        help=f"{text}; --defence reconstruction-search only (default {default}).",
    )


def _classifier_options(parser, where: str) -> None:
    """``--classifier``, ``--classifier-weights``, ``--classifier-kwargs``: a user's classifier (docs/own_models.md)."""
    parser.add_argument(
        "--classifier",
        metavar="SPEC",
        help=f"Your classifier {where}: 'package.module:Factory' (importable, or a .py file's module "
        "name in the current directory), a torch.export program (.pt2), a TorchScript file (.pt/.pth/.ts), or a "
        "train-classifier output directory.",
    )
    parser.add_argument(
        "--classifier-weights", type=Path, metavar="FILE", help="safetensors state dict for --classifier."
    )
    parser.add_argument(
        "--classifier-kwargs",
        metavar="JSON",
        help="Keyword arguments of the factory as a JSON object, e.g. '{\"n\": 10}'.",
    )


def _augment_options(parser: argparse.ArgumentParser, config: type) -> None:
    """``--hflip/--no-hflip``, with the config's default in ``--help``."""
    hflip = bool(getattr(config, "hflip"))
    default = "on" if hflip else "off"
    parser.add_argument(
        "--hflip",
        action=argparse.BooleanOptionalAction,
        default=hflip,
        help=f"Random horizontal flips of the training images (default {default}; turn off for digits, text and "
        "other data without mirror symmetry). Recorded in the model card.",
    )


def _common_train_args(parser: argparse.ArgumentParser, config: type) -> None:
    _run_args(parser)
    _config_option(parser, "--batch-size", config, "batch_size", "Training batch size")
    _config_option(parser, "--lr", config, "lr", "Peak learning rate")
    _config_option(parser, "--checkpoint-every", config, "checkpoint_every", "Steps between checkpoints")


def _build_parser() -> argparse.ArgumentParser:  # pylint: disable=too-many-statements
    from art_purify.defences.preprocessor import GRADIENT_MODES, SEARCH_GRADIENT_MODES
    from art_purify.evaluation.attacks import ATTACKS, AttackSettings
    from art_purify.evaluation.defences import DEFENCES
    from art_purify.evaluation.suite import PRESET_DESCRIPTIONS
    from art_purify.optim.sam import BATCHNORM_MODES
    from art_purify.defences.preprocessor import RT_PRESETS
    from art_purify.training import AToPTrainConfig, ClassifierTrainConfig, DiffusionTrainConfig
    from art_purify.training.atop import TRAIN_ATTACKS
    from art_purify.training.long_tailed import OPTIMIZERS, LongTailedTrainConfig

    parser = argparse.ArgumentParser(prog="art-purify", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging (and ART's INFO lines).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-classifier", help="Train the SmallResNet Fashion-MNIST classifier.")
    _common_train_args(p, ClassifierTrainConfig)
    _config_option(p, "--epochs", ClassifierTrainConfig, "epochs", "Training epochs")
    _config_option(
        p,
        "--diffusion-augment",
        ClassifierTrainConfig,
        "diffusion_augment",
        "Purification-aware training: fraction of images replaced by a diffuse-and-denoise copy made with "
        "the zoo diffusion model --diffusion-model (0: off)",
    )
    p.add_argument("--diffusion-model", default="fashion-mnist", help="Zoo diffusion model for --diffusion-augment.")
    _augment_options(p, ClassifierTrainConfig)
    _config_option(p, "--crop-pad", ClassifierTrainConfig, "crop_pad", "Random-crop padding in pixels (0: no crop)")
    p.add_argument(
        "--test-data",
        help="Test data for the accuracy in the model card (any --data form; default: --data's test split when it "
        "has one, as IDX t10k-* files or x_test in an .npz, else none).",
    )
    t_range = (ClassifierTrainConfig.diffusion_t_min, ClassifierTrainConfig.diffusion_t_max)
    p.add_argument(
        "--diffusion-t",
        type=int,
        nargs=2,
        metavar=("T_MIN", "T_MAX"),
        default=t_range,
        help=f"Timestep range of the denoised copies (default {t_range[0]} {t_range[1]}).",
    )

    p = sub.add_parser("train-diffusion", help="Train the Fashion-MNIST DDPM UNet (noise prediction).")
    _common_train_args(p, DiffusionTrainConfig)
    _config_option(p, "--steps", DiffusionTrainConfig, "steps", "Optimisation steps")
    _config_option(p, "--t-max", DiffusionTrainConfig, "t_max", "Train on timesteps [0, t_max) (see docs/models.md)")
    _config_option(p, "--ema-decay", DiffusionTrainConfig, "ema_decay", "EMA decay of the exported weights")
    _augment_options(p, DiffusionTrainConfig)
    p.add_argument(
        "--unet-config",
        type=Path,
        help="JSON file of diffusers UNet2DModel keyword arguments (default: the package's 1.9 M-parameter UNet "
        "with the data's channels and size; see docs/models.md).",
    )

    lt = LongTailedTrainConfig
    p = sub.add_parser(
        "train-long-tailed",
        help="Train the classifier architecture on Fashion-MNIST-LT with SGD, SAM, "
        "ImbSAM or SSE-SAM and report many / medium / few-shot test accuracy.",
    )
    _run_args(p)
    p.add_argument(
        "--optimizer",
        default=lt.optimizer,
        choices=list(OPTIMIZERS),
        help=f"Optimiser (default {lt.optimizer}); all step with SGD (Nesterov momentum {lt.momentum}, "
        f"weight decay {lt.weight_decay}).",
    )
    _config_option(p, "--epochs", lt, "epochs", "Epochs")
    _config_option(p, "--batch-size", lt, "batch_size", "Batch size")
    _config_option(p, "--lr", lt, "lr", "Initial learning rate, cosine-decayed per epoch")
    _config_option(p, "--imbalance", lt, "imbalance_factor", "Largest over smallest class size")
    _config_option(p, "--rho", lt, "rho", "SAM radius")
    _config_option(p, "--rho-head", lt, "rho_head", "SSE-SAM head radius")
    _config_option(p, "--rho-tail", lt, "rho_tail", "ImbSAM / SSE-SAM tail radius")
    _config_option(p, "--gamma", lt, "gamma", "SSE-SAM: rho_head = 0 from epoch ceil(gamma x epochs)")
    p.add_argument(
        "--eta",
        type=float,
        help="Tail classes have fewer than eta training samples " "(default 20 %% of the largest class).",
    )
    p.add_argument(
        "--batchnorm",
        default=lt.batchnorm,
        choices=list(BATCHNORM_MODES),
        help="How ImbSAM / SSE-SAM group passes treat BatchNorm: auto (= batch for BatchNorm models: "
        "whole-batch passes, exact), batch, or group (fast: each group normalised with its own statistics; "
        f"see docs/optim.md). Default {lt.batchnorm}.",
    )
    p.add_argument("--no-augment", action="store_true", help="No random crop and flip.")

    at = AToPTrainConfig
    p = sub.add_parser(
        "train-atop",
        help="Train an AToP purifier (inpainting generator) for a zoo classifier: pre-training on clean images, "
        "then adversarial fine-tuning.",
    )
    _run_args(p)
    p.add_argument("--model", default="fashion-mnist", help="Zoo name of the (frozen) classifier.")
    _classifier_options(p, "instead of the zoo's --model")
    _config_option(p, "--pretrain-epochs", at, "pretrain_epochs", "Pre-training epochs (GAN + L1, clean images)")
    _config_option(p, "--epochs", at, "epochs", "Fine-tuning epochs (GAN + L1 + CE on adversarial images)")
    _config_option(p, "--finetune-examples", at, "finetune_examples", "Training images per fine-tuning epoch")
    _config_option(p, "--batch-size", at, "batch_size", "Batch size")
    _config_option(p, "--pretrain-lr", at, "pretrain_lr", "Adam learning rate of the pre-training")
    _config_option(p, "--lr", at, "lr", "Adam learning rate of the fine-tuning")
    _config_option(p, "--ce-weight", at, "ce_weight", "Weight lambda of the classification loss")
    _config_option(p, "--ce-start-epoch", at, "ce_start_epoch", "First fine-tuning epoch (from 0) with the CE loss")
    p.add_argument(
        "--train-attack",
        default=at.attack,
        choices=list(TRAIN_ATTACKS),
        help=f"Attack making the training adversarial examples, against the classifier alone (default {at.attack}).",
    )
    _config_option(p, "--eps", at, "eps", "l_inf budget of the training attack")
    _config_option(p, "--pgd-iter", at, "pgd_iter", "Iterations of --train-attack pgd")
    p.add_argument(
        "--transform",
        default=at.transform,
        choices=sorted(RT_PRESETS),
        help=f"Random transform of the training (default {at.transform}; see docs/atop.md).",
    )
    _config_option(p, "--block-size", at, "block_size", "Mask block side in pixels")
    _config_option(p, "--mask-fraction", at, "mask_fraction", "Fraction of blocks each mask hides")
    _config_option(p, "--width", at, "width", "Generator width")

    p = sub.add_parser(
        "evaluate",
        help="Attack an ART PyTorchClassifier (optionally defended) with the attack suite.",
        description="Attack the classifier with ART's attacks, take the per-example worst case, run the "
        "sanity checks, and write report.json, adversarial.npz and report.png to --out.",
    )
    _data_arg(p, "embedded")
    p.add_argument(
        "--model",
        default="fashion-mnist",
        help="Zoo name of every piece not given below: classifier, diffusion model, AToP purifier (default "
        "fashion-mnist).",
    )
    own = p.add_argument_group("your own models (see docs/own_models.md)")
    _classifier_options(own, "instead of the zoo's")
    own.add_argument(
        "--nb-classes", type=int, help="Number of classes (default: read from the classifier's logits; checked)."
    )
    own.add_argument(
        "--clip-values",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=(0.0, 1.0),
        help="The classifier's input range; the data must lie in it (default 0 1).",
    )
    own.add_argument(
        "--stages",
        metavar="NAMES",
        help="Comma-separated module names of the classifier for the heterogeneous defence's saliency "
        "(default: its stage_names attribute).",
    )
    own.add_argument(
        "--diffusion",
        type=Path,
        metavar="DIR",
        help="Diffusers model directory (save_pretrained layout or a train-diffusion output) for the diffusion "
        "defences.",
    )
    own.add_argument("--atop", type=Path, metavar="DIR", help="train-atop output directory for the AToP defences.")
    p.add_argument(
        "--defence",
        default="none",
        choices=list(DEFENCES),
        help="Preprocessing defence in front of the classifier (default none).",
    )
    p.add_argument(
        "--preset",
        default="quick",
        choices=sorted(PRESET_DESCRIPTIONS),
        help="; ".join(f"{k}: {v}" for k, v in sorted(PRESET_DESCRIPTIONS.items()))
        + ". Options given explicitly override the preset.",
    )
    p.add_argument(
        "--attack",
        "--attacks",
        dest="attack",
        action="append",
        metavar="NAMES",
        help="Comma-separated attacks (repeatable): "
        + ", ".join(ATTACKS)
        + "; 'pgd-eot' is an alias of 'pgd' (EOT applies to every gradient attack of a random defence). "
        "Default: the preset's (pgd).",
    )
    p.add_argument(
        "--gradient",
        default=None,
        choices=list(dict.fromkeys((*GRADIENT_MODES, *SEARCH_GRADIENT_MODES))),
        help="Gradient the defence gives the white-box attacks (default: the preset's, exact): exact or surrogate for the "
        "diffusion purifiers, exact, truncated (the last --unrolled-steps steps unrolled, cheaper) or bpda (a "
        "reference only) for the reconstruction search; --attack bpda runs the BPDA reference for any defence.",
    )
    for flag, name, text in SEARCH_OPTIONS:
        _search_option(p, flag, name, text)
    p.add_argument(
        "--ere-weight",
        type=float,
        default=AttackSettings.ere_weight,
        help="Weight of the ERE term of the reconstruction-aware attack (default " f"{AttackSettings.ere_weight}).",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=AttackSettings.temperature,
        help="Temperature of the resubmission attack's soft maximum over EOT draws (default "
        f"{AttackSettings.temperature}; large: PGD-EOT's mean, small: the weakest draw).",
    )
    speed = p.add_argument_group("speed options of the diffusion defences (see docs/scale.md)")
    speed.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "float16"],
        help="Run the UNet calls under autocast in this precision (default float32; the classifier and the "
        "attack stay in float32).",
    )
    speed.add_argument("--channels-last", action="store_true", help="Feed the UNet channels-last tensors.")
    speed.add_argument("--compile-unet", action="store_true", help="torch.compile the UNet (slow first call).")
    p.add_argument(
        "--transform",
        choices=sorted(RT_PRESETS),
        help="AToP's random transform for --defence random-masking, atop or atop-pretrained (default rt2).",
    )
    p.add_argument("--eot", type=int, help="EOT samples per gradient of a random defence (preset default).")
    p.add_argument("--votes", type=int, help="Majority vote over this many purification runs (preset default).")
    p.add_argument(
        "--eps",
        type=float,
        default=AttackSettings.eps,
        help=f"l_inf budget in [0, 1] pixel units (default {AttackSettings.eps}).",
    )
    p.add_argument("--eps-step", type=float, help="l_inf step size (default: eps x the preset's step ratio).")
    p.add_argument(
        "--eps-l2",
        type=float,
        default=AttackSettings.eps_l2,
        help=f"l_2 budget of pgd-l2 (default {AttackSettings.eps_l2}).",
    )
    p.add_argument("--max-iter", type=int, help="Attack iterations (preset default).")
    p.add_argument("--restarts", type=int, help="Random restarts (0: PGD starts at the clean input; preset default).")
    p.add_argument("--square-queries", type=int, help="Queries of the Square attack (preset default).")
    p.add_argument(
        "--sanity-n", type=int, help="Examples used by the sanity checks and the eps curve (preset default)."
    )
    p.add_argument(
        "--eps-curve",
        metavar="FACTORS",
        help="Extra points of the accuracy-against-eps curve as "
        "comma-separated multiples of eps, e.g. 0.5,2 (preset default: none for quick, 0.5,2 for paper).",
    )
    p.add_argument(
        "--cascade",
        action="store_true",
        help="Run each attack only on the examples every earlier attack "
        "failed on (as AutoAttack does; white-box first, then bpda, then square): a worst case at a "
        "fraction of the cost; per-attack accuracies are cumulative.",
    )
    p.add_argument("--no-sanity", action="store_true", help="Skip the sanity checks (not recommended).")
    p.add_argument("--no-figure", action="store_true", help="Do not draw report.png.")
    p.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted evaluation from OUT/partial (the "
        "clean votes and every finished attack are kept there); same command otherwise.",
    )
    p.add_argument(
        "--n",
        "--num-images",
        dest="n",
        type=int,
        default=100,
        help="Number of test images (default 100). Under torchrun write --num-images: torchrun's own parser reads "
        "--n as an abbreviation of its --nnodes.",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=AttackSettings.batch_size,
        help=f"Attack and purification batch size, and the size of the example batches that carry the seeds "
        f"and the checkpoints (default {AttackSettings.batch_size}).",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of every random draw (default 0).")
    p.add_argument(
        "--seeding",
        choices=["batch", "phase"],
        default="batch",
        help="batch (default): seeds per example batch of --batch-size, so that a torchrun run gives the same "
        "report; phase: one seed per phase for the whole run, as reports of report_version 1 were made.",
    )
    p.add_argument(
        "--dist-timeout",
        type=float,
        default=360.0,
        metavar="MINUTES",
        help="Under torchrun: how long a rank waits for the others at the start and at the end (default 360).",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="RANK/WORLD",
        help="Without torchrun: run only the example batches RANK, RANK+WORLD, ... (one job of a SLURM array), "
        "saved in OUT/partial; a last run without --shard and with --resume writes the report.",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="'auto' (CUDA if available), 'cpu' or 'cuda[:N]'; under torchrun each rank uses cuda:LOCAL_RANK.",
    )
    p.add_argument("--out", type=Path, default=Path("reports/evaluate"), help="Report directory.")
    p.add_argument("--quiet", action="store_true", help="No progress bar.")
    return parser


def _set_threads(n: Optional[int]) -> None:
    if n is not None:
        import torch

        if n <= 0:
            raise ValueError(f"--num-threads must be positive, got {n}.")
        torch.set_num_threads(n)


def _load_train(args):
    from art_purify.datasets import check_range, load_dataset

    if args.n_train is not None and args.n_train <= 0:
        raise ValueError(f"--n-train must be a positive integer, got {args.n_train}.")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file, not a directory.")
    x, y = load_dataset(args.data, "train", n=args.n_train)
    check_range(x, (0.0, 1.0), f"--data {args.data}")  # the training commands work on images in [0, 1]
    return x, y


def _load_test(source, n: Optional[int] = None):
    """The test split of ``source`` (any ``--data`` form), or ``None`` when it has none."""
    from art_purify.datasets import has_split, load_dataset

    if not has_split(source, "test"):
        return None, None
    x, y = load_dataset(source, "test")
    return (x, y) if n is None else (x[:n], y[:n])


def _cmd_train_classifier(args, command: str) -> int:
    from art_purify.datasets import load_dataset
    from art_purify.training import ClassifierTrainConfig, train_classifier

    _set_threads(args.num_threads)
    config = ClassifierTrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        diffusion_augment=args.diffusion_augment,
        diffusion_t_min=args.diffusion_t[0],
        diffusion_t_max=args.diffusion_t[1],
        hflip=args.hflip,
        crop_pad=args.crop_pad,
    )
    config.validate()  # before loading anything
    diffusion = None
    if args.diffusion_augment > 0:
        from art_purify.zoo import load_diffusion

        diffusion = load_diffusion(args.diffusion_model)
    x, y = _load_train(args)
    x_test, y_test = load_dataset(args.test_data, "test") if args.test_data else _load_test(args.data)
    if x_test is not None and y_test is not None:  # checked before training, not after it
        from art_purify.datasets import check_range

        if x_test.shape[1:] != x.shape[1:]:
            raise ValueError(f"--test-data images are {x_test.shape[1:]}, the training images {x.shape[1:]}.")
        check_range(x_test, (0.0, 1.0), "--test-data")
        if int(y_test.max()) > int(y.max()):
            raise ValueError(f"--test-data has label {int(y_test.max())}; the training labels stop at {int(y.max())}.")
    card = train_classifier(
        x,
        y,
        args.out,
        config,
        x_test,
        y_test,
        device=args.device,
        resume=args.resume,
        stop_after=args.stop_after,
        command=command,
        verbose=not args.quiet,
        diffusion=diffusion,
    )

    if "interrupted_at" in card:
        print(f"stopped at step {card['interrupted_at']}; continue with --resume")
    else:
        print(f"test accuracy {card['metrics'].get('test_accuracy', float('nan')):.4f}; artefacts in {args.out}")
    return 0


def _cmd_train_diffusion(args, command: str) -> int:
    from art_purify.training import DiffusionTrainConfig, train_diffusion

    _set_threads(args.num_threads)
    config = DiffusionTrainConfig(
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        t_max=args.t_max,
        ema_decay=args.ema_decay,
        hflip=args.hflip,
    )
    config.validate()  # before loading anything
    unet_config = None
    if args.unet_config is not None:
        import json

        try:
            unet_config = json.loads(args.unet_config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"--unet-config {args.unet_config} is not a readable JSON file: {err}") from err
        if not isinstance(unet_config, dict):
            raise ValueError(f"--unet-config {args.unet_config} must hold a JSON object of UNet2DModel arguments.")
    x, _ = _load_train(args)
    card = train_diffusion(
        x,
        args.out,
        config,
        unet_config=unet_config,
        device=args.device,
        resume=args.resume,
        stop_after=args.stop_after,
        command=command,
        verbose=not args.quiet,
    )
    if "interrupted_at" in card:
        print(f"stopped at step {card['interrupted_at']}; continue with --resume")
    else:
        print(f"final loss {card['metrics']['final_train_loss_mean_last_100']:.4f}; artefacts in {args.out}")
    return 0


def _cmd_train_atop(args, command: str) -> int:
    from art_purify.training import AToPTrainConfig, train_atop
    from art_purify.zoo.user import resolve_classifier

    _set_threads(args.num_threads)
    config = AToPTrainConfig(
        pretrain_epochs=args.pretrain_epochs,
        epochs=args.epochs,
        finetune_examples=args.finetune_examples,
        batch_size=args.batch_size,
        pretrain_lr=args.pretrain_lr,
        lr=args.lr,
        ce_weight=args.ce_weight,
        ce_start_epoch=args.ce_start_epoch,
        attack=args.train_attack,
        eps=args.eps,
        pgd_iter=args.pgd_iter,
        transform=args.transform,
        block_size=args.block_size,
        mask_fraction=args.mask_fraction,
        width=args.width,
        seed=args.seed,
    )
    config.validate()  # before loading anything
    kwargs = _json_object(args.classifier_kwargs, "--classifier-kwargs")
    model = resolve_classifier(args.classifier, args.classifier_weights, kwargs, args.model)
    x, y = _load_train(args)
    x_test, y_test = _load_test(args.data, 1000)
    card = train_atop(
        x,
        y,
        args.out,
        model,
        config,
        x_test,
        y_test,
        device=args.device,
        resume=args.resume,
        stop_after=args.stop_after,
        command=command,
        verbose=not args.quiet,
    )
    if "interrupted_at_epoch" in card:
        print(f"stopped after epoch {card['interrupted_at_epoch']}; continue with --resume")
    else:
        if y_test is not None:
            accuracy = card["metrics"].get("test_accuracy_purified", float("nan"))
            print(f"clean accuracy through the purifier {accuracy:.4f} (first {len(y_test)} test images); ", end="")
        print(f"artefacts in {args.out}")
    return 0


def _cmd_train_long_tailed(args, command: str) -> int:
    from art_purify.datasets import load_fashion_mnist
    from art_purify.training.long_tailed import LongTailedTrainConfig, train_long_tailed

    _set_threads(args.num_threads)
    config = LongTailedTrainConfig(
        optimizer=args.optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        imbalance_factor=args.imbalance_factor,
        rho=args.rho,
        rho_head=args.rho_head,
        rho_tail=args.rho_tail,
        gamma=args.gamma,
        eta=args.eta,
        batchnorm=args.batchnorm,
        seed=args.seed,
        augment=not args.no_augment,
    )
    config.validate()  # before loading anything
    x, y = _load_train(args)
    x_test, y_test = load_fashion_mnist("test", source=args.data)
    card = train_long_tailed(
        x,
        y,
        args.out,
        config,
        x_test,
        y_test,
        device=args.device,
        resume=args.resume,
        verbose=not args.quiet,
        command=command,
        stop_after=args.stop_after,
    )
    if "interrupted_at" in card:
        print(f"stopped after epoch {card['interrupted_at']}; continue with --resume")
        return 0
    test = card["metrics"]["test"]
    print(
        f"{args.optimizer}: test accuracy {test['accuracy']:.4f} (many {test['many_accuracy']:.4f}, medium "
        f"{test['medium_accuracy']:.4f}, few {test['few_accuracy']:.4f}); artefacts in {args.out}"
    )
    return 0


def _json_object(text: Optional[str], flag: str) -> Optional[dict]:
    if text is None:
        return None
    import json

    try:
        value = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{flag} must be a JSON object, got {text!r}: {err}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}.")
    return value


def _cmd_evaluate(args, command: str) -> int:
    from art_purify.evaluation.command import parse_factors, run_evaluate

    print(
        run_evaluate(
            out=args.out,
            data=args.data,
            n=args.n,
            model=args.model,
            defence=args.defence,
            gradient=args.gradient,
            transform=args.transform,
            seed=args.seed,
            device=args.device,
            cascade=args.cascade,
            sanity=not args.no_sanity,
            figure=not args.no_figure,
            resume=args.resume,
            verbose=not args.quiet,
            command=command,
            preset=args.preset,
            attacks=args.attack,
            eps=args.eps,
            eps_step=args.eps_step,
            eps_l2=args.eps_l2,
            max_iter=args.max_iter,
            restarts=args.restarts,
            square_queries=args.square_queries,
            batch_size=args.batch_size,
            eot=args.eot,
            votes=args.votes,
            sanity_n=args.sanity_n,
            eps_curve=None if args.eps_curve is None else parse_factors(args.eps_curve),
            ere_weight=args.ere_weight,
            temperature=args.temperature,
            search={name: getattr(args, f"search_{name}") for _, name, _ in SEARCH_OPTIONS},
            classifier=args.classifier,
            classifier_weights=args.classifier_weights,
            classifier_kwargs=_json_object(args.classifier_kwargs, "--classifier-kwargs"),
            nb_classes=args.nb_classes,
            clip_values=tuple(args.clip_values),
            stages=None if args.stages is None else [v.strip() for v in args.stages.split(",") if v.strip()],
            diffusion=args.diffusion,
            atop=args.atop,
            seeding=args.seeding,
            dist_timeout=args.dist_timeout,
            shard=args.shard,
            speed={
                "precision": args.precision,
                "channels_last": args.channels_last or None,
                "compile_unet": args.compile_unet or None,
            },
        )
    )
    return 0


def _shard(text: str) -> Tuple[int, int]:
    """``RANK/WORLD`` (e.g. ``3/8``) as ``(3, 8)``, with ``0 <= RANK < WORLD``."""
    from art_purify.evaluation.sharding import check_shard  # pylint: disable=import-outside-toplevel

    try:
        rank, world = (int(v) for v in text.split("/"))
        return check_shard((rank, world))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--shard must be RANK/WORLD with 0 <= RANK < WORLD, got {text!r}.") from err


def _join_negative_values(parser: argparse.ArgumentParser, argv: List[str]) -> List[str]:
    """``--eps-curve -1,0`` -> ``--eps-curve=-1,0``: argparse would take a value that starts with ``-`` for an option
    (and then complain that the option has no value), so the validation could never say what is wrong with it."""
    takes_value: set = set()
    for sub in _subparsers(parser):
        for action in sub._actions:  # pylint: disable=protected-access
            stores = isinstance(action, (argparse._StoreAction, argparse._AppendAction))  # pylint: disable=W0212
            if action.option_strings and stores and action.nargs is None:
                takes_value.update(action.option_strings)
    out: List[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in takes_value and i + 1 < len(argv) and re.match(r"^-[\d.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _subparsers(parser: argparse.ArgumentParser) -> List[argparse.ArgumentParser]:
    for action in parser._actions:  # pylint: disable=protected-access
        if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
            return list(action.choices.values())
    return []


def _with_flag_names(message: str, parser: argparse.ArgumentParser, command: str) -> str:
    """Library messages name parameters (``batch_size must be ...``); on the command line, name the flag."""
    from art_purify.evaluation.command import SEARCH_ERROR_PREFIX

    if command == "evaluate" and message.startswith(SEARCH_ERROR_PREFIX):  # the search's own parameter names
        shared = (("--gradient", "gradient", ""), ("--batch-size", "batch_size", ""), ("--seed", "seed", ""))
        for flag, name, _ in (*SEARCH_OPTIONS, *shared):
            message = re.sub(rf"(?<![\w\-.']){re.escape(name)}(?![\w])", flag, message)
        return message
    sub = next((p for p in _subparsers(parser) if p.prog.split()[-1] == command), None)
    if sub is None:
        return message
    for action in sub._actions:  # pylint: disable=protected-access
        if not action.option_strings or action.dest in ("help",):
            continue
        flag = max(action.option_strings, key=len)
        pattern = rf"(?<![\w\-.']){re.escape(action.dest)}(?=( must| is |=| \(| of | has ))"
        message = re.sub(pattern, flag, message)
    return message


def _interrupted(args: argparse.Namespace, command: str) -> str:
    """What to tell a user who pressed Ctrl-C: where the last checkpoint is and the command that goes on."""
    resume = command if "--resume" in command.split() else command + " --resume"
    if args.command == "evaluate":
        partial = Path(args.out) / "partial"
        saved = sorted(p.stem for p in partial.glob("b*-*.npz")) if partial.is_dir() else []
        batches = len({name.split("-", 1)[0] for name in saved})
        where = (
            f"{len(saved)} finished phases of {batches} example batches are saved in {partial}"
            if saved
            else f"no phase had finished yet in {partial}"
        )
    elif args.command == "train-atop":
        phases = (Path(args.out) / "finetune" / "checkpoint.pt", Path(args.out) / "pretrain" / "checkpoint.pt")
        done = [str(p) for p in phases if p.is_file()]
        where = f"the last checkpoint is {done[0]}" if done else f"no epoch had finished yet in {args.out}"
    else:
        checkpoint = Path(args.out) / "checkpoint.pt"
        where = (
            f"the last checkpoint is {checkpoint}"
            if checkpoint.is_file()
            else f"no checkpoint was written yet (the first comes after --checkpoint-every steps) in {args.out}"
        )
    return f"art-purify {args.command}: interrupted; {where}. Continue with:\n  {resume}"


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``art-purify`` console script (and of ``python -m art_purify``)."""
    parser = _build_parser()
    argv = _join_negative_values(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:  # ART's INFO lines (its data path, every attack's start) drown the answer
        logging.getLogger("art").setLevel(logging.WARNING)
    command = "art-purify " + " ".join(shlex.quote(a) for a in argv)
    handlers = {
        "train-classifier": _cmd_train_classifier,
        "train-diffusion": _cmd_train_diffusion,
        "train-long-tailed": _cmd_train_long_tailed,
        "train-atop": _cmd_train_atop,
        "evaluate": _cmd_evaluate,
    }
    try:
        return handlers[args.command](args, command)
    except KeyboardInterrupt:
        print("\n" + _interrupted(args, command), file=sys.stderr)
        return 130
    except (ValueError, OSError, FloatingPointError) as err:  # FileNotFoundError, FileExistsError are OSErrors
        message = _with_flag_names(str(err), parser, args.command)
        print(f"art-purify {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
