"""The ``art-purify`` command line: training the default models and evaluating defences."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import List, Optional

logger = logging.getLogger("art_purify")


def _data_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--data",
        default=default,
        help="Fashion-MNIST source: a directory of the original IDX files, 'embedded' (first 1,000 test images), "
        "'auto' (Debian's directory if present, else embedded) or 'download' (torchvision, explicit). "
        f"Default: {default}.",
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


def _common_train_args(parser: argparse.ArgumentParser) -> None:
    _run_args(parser)
    parser.add_argument("--batch-size", type=int, help="Training batch size.")
    parser.add_argument("--lr", type=float, help="Peak learning rate.")
    parser.add_argument("--checkpoint-every", type=int, help="Steps between checkpoints.")


ATTACK_NAMES = ("pgd", "pgd-l2", "apgd-ce", "apgd-dlr", "autoattack", "bpda", "square")
PRESET_HELP = {
    "quick": "10 iterations x 2 EOT, 3 votes, step eps/4 (minutes on a CPU)",
    "paper": "Lee & Kim: 200 iterations x 20 EOT, 20 votes, step 0.007 at eps 8/255 scaled to eps",
}

def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="art-purify", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-classifier", help="Train the SmallResNet Fashion-MNIST classifier.")
    _common_train_args(p)
    p.add_argument("--epochs", type=int, help="Training epochs (default 15).")
    p.add_argument("--diffusion-augment", type=float, default=0.0,
                   help="Purification-aware training: fraction of images replaced by a diffuse-and-denoise copy "
                   "made with the zoo diffusion model --diffusion-model (default 0: off).")
    p.add_argument("--diffusion-model", default="fashion-mnist", help="Zoo diffusion model for --diffusion-augment.")
    p.add_argument("--diffusion-t", type=int, nargs=2, metavar=("T_MIN", "T_MAX"), default=(50, 200),
                   help="Timestep range of the denoised copies (default 50 200).")

    p = sub.add_parser("train-diffusion", help="Train the Fashion-MNIST DDPM UNet (noise prediction).")
    _common_train_args(p)
    p.add_argument("--steps", type=int, help="Optimisation steps (default 5000).")
    p.add_argument("--t-max", type=int, help="Train on timesteps [0, t_max) (default 300; see docs/models.md).")
    p.add_argument("--ema-decay", type=float, help="EMA decay of the exported weights (default 0.999).")

    p = sub.add_parser("train-long-tailed", help="Train the classifier architecture on Fashion-MNIST-LT with SGD, SAM, "
                       "ImbSAM or SSE-SAM and report many / medium / few-shot test accuracy.")
    _run_args(p)
    p.add_argument("--optimizer", default="ssesam", choices=["sgd", "sam", "imbsam", "ssesam"],
                   help="Optimiser (default ssesam); all step with SGD (Nesterov momentum 0.9, weight decay 5e-4).")
    p.add_argument("--epochs", type=int, default=10, help="Epochs (default 10).")
    p.add_argument("--batch-size", type=int, default=128, help="Batch size (default 128).")
    p.add_argument("--lr", type=float, default=0.1, help="Initial learning rate, cosine-decayed per epoch (0.1).")
    p.add_argument("--imbalance", type=float, default=100.0, help="Largest over smallest class size (default 100).")
    p.add_argument("--rho", type=float, default=0.05, help="SAM radius (default 0.05).")
    p.add_argument("--rho-head", type=float, default=0.05, help="SSE-SAM head radius (default 0.05).")
    p.add_argument("--rho-tail", type=float, default=0.1, help="ImbSAM / SSE-SAM tail radius (default 0.1).")
    p.add_argument("--gamma", type=float, default=0.7, help="SSE-SAM: rho_head = 0 from epoch ceil(gamma x epochs).")
    p.add_argument("--eta", type=float, help="Tail classes have fewer than eta training samples "
                   "(default 20 %% of the largest class).")
    p.add_argument("--batchnorm", default="auto", choices=["auto", "batch", "group"],
                   help="How ImbSAM / SSE-SAM group passes treat BatchNorm: auto (= batch for BatchNorm models: whole-batch "
                   "passes, exact), batch, or group (fast: each group normalised with its own statistics; "
                   "see docs/optim.md).")
    p.add_argument("--no-augment", action="store_true", help="No random crop and flip.")

    p = sub.add_parser("evaluate", help="Attack an ART PyTorchClassifier (optionally defended) with the attack suite.",
                       description="Attack the classifier with ART's attacks, take the per-example worst case, run the "
                       "sanity checks, and write report.json, adversarial.npz and report.png to --out.")
    _data_arg(p, "embedded")
    p.add_argument("--model", default="fashion-mnist", help="Zoo name of the classifier (default fashion-mnist).")
    p.add_argument("--defence", default="none", choices=["none", "uniform", "heterogeneous"],
                   help="Preprocessing defence in front of the classifier (default none).")
    p.add_argument("--preset", default="quick", choices=sorted(PRESET_HELP),
                   help="; ".join(f"{k}: {v}" for k, v in sorted(PRESET_HELP.items()))
                   + ". Options given explicitly override the preset.")
    p.add_argument("--attack", "--attacks", dest="attack", action="append", metavar="NAMES",
                   help="Comma-separated attacks (repeatable): " + ", ".join(ATTACK_NAMES)
                   + "; 'pgd-eot' is an alias of 'pgd' (EOT applies to every gradient attack of a random defence). "
                   "Default: the preset's (pgd).")
    p.add_argument("--gradient", default="exact", choices=["exact", "surrogate", "bpda"],
                   help="Gradient the defence gives the white-box attacks (default exact). Use --attack bpda for the "
                   "BPDA reference rather than --gradient bpda.")
    p.add_argument("--eot", type=int, help="EOT samples per gradient of a random defence (preset default).")
    p.add_argument("--votes", type=int, help="Majority vote over this many purification runs (preset default).")
    p.add_argument("--eps", type=float, default=0.1, help="l_inf budget in [0, 1] pixel units (default 0.1).")
    p.add_argument("--eps-step", type=float, help="l_inf step size (default: eps x the preset's step ratio).")
    p.add_argument("--eps-l2", type=float, default=1.5, help="l_2 budget of pgd-l2 (default 1.5).")
    p.add_argument("--max-iter", "--steps", dest="max_iter", type=int, help="Attack iterations (preset default).")
    p.add_argument("--restarts", type=int, help="Random restarts (0: PGD starts at the clean input; preset default).")
    p.add_argument("--square-queries", type=int, help="Queries of the Square attack (preset default).")
    p.add_argument("--sanity-n", type=int, help="Examples used by the sanity checks and the eps curve (preset default).")
    p.add_argument("--eps-curve", metavar="FACTORS", help="Extra points of the accuracy-against-eps curve as "
                   "comma-separated multiples of eps, e.g. 0.5,2 (preset default: none for quick, 0.5,2 for paper).")
    p.add_argument("--cascade", action="store_true", help="Run each attack only on the examples every earlier attack "
                   "failed on (as AutoAttack does; white-box first, then bpda, then square): a worst case at a "
                   "fraction of the cost; per-attack accuracies are cumulative.")
    p.add_argument("--no-sanity", action="store_true", help="Skip the sanity checks (not recommended).")
    p.add_argument("--no-figure", action="store_true", help="Do not draw report.png.")
    p.add_argument("--resume", action="store_true", help="Continue an interrupted evaluation from OUT/partial (the "
                   "clean votes and every finished attack are kept there); same command otherwise.")
    p.add_argument("--n", type=int, default=100, help="Number of test images (default 100).")
    p.add_argument("--batch-size", type=int, default=64, help="Attack and purification batch size (default 64).")
    p.add_argument("--seed", type=int, default=0, help="Seed of every random draw (default 0).")
    p.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu' or 'cuda[:N]'.")
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
    from art_purify.datasets import load_fashion_mnist

    x, y = load_fashion_mnist("train", source=args.data, n=args.n_train)
    return x, y


def _cmd_train_classifier(args, command: str) -> int:
    from art_purify.datasets import load_fashion_mnist
    from art_purify.training import ClassifierTrainConfig, train_classifier

    _set_threads(args.num_threads)
    config = ClassifierTrainConfig(seed=args.seed)
    for name in ("epochs", "batch_size", "lr", "checkpoint_every"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.diffusion_augment = args.diffusion_augment
    config.diffusion_t_min, config.diffusion_t_max = args.diffusion_t
    diffusion = None
    if args.diffusion_augment > 0:
        from art_purify.zoo import load_diffusion

        diffusion = load_diffusion(args.diffusion_model)
    x, y = _load_train(args)
    x_test, y_test = load_fashion_mnist("test", source=args.data)
    card = train_classifier(x, y, args.out, config, x_test, y_test, device=args.device, resume=args.resume,
                            stop_after=args.stop_after, command=command, verbose=not args.quiet, diffusion=diffusion)

    if "interrupted_at" in card:
        print(f"stopped at step {card['interrupted_at']}; continue with --resume")
    else:
        print(f"test accuracy {card['metrics'].get('test_accuracy', float('nan')):.4f}; artefacts in {args.out}")
    return 0


def _cmd_train_diffusion(args, command: str) -> int:
    from art_purify.training import DiffusionTrainConfig, train_diffusion

    _set_threads(args.num_threads)
    config = DiffusionTrainConfig(seed=args.seed)
    for name in ("steps", "batch_size", "lr", "checkpoint_every", "t_max", "ema_decay"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    x, _ = _load_train(args)
    card = train_diffusion(x, args.out, config, device=args.device, resume=args.resume, stop_after=args.stop_after,
                           command=command, verbose=not args.quiet)
    if "interrupted_at" in card:
        print(f"stopped at step {card['interrupted_at']}; continue with --resume")
    else:
        print(f"final loss {card['metrics']['final_train_loss_mean_last_100']:.4f}; artefacts in {args.out}")
    return 0


def _cmd_train_long_tailed(args, command: str) -> int:
    from art_purify.datasets import load_fashion_mnist
    from art_purify.training.long_tailed import LongTailedTrainConfig, train_long_tailed

    _set_threads(args.num_threads)
    config = LongTailedTrainConfig(
        optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        imbalance_factor=args.imbalance, rho=args.rho, rho_head=args.rho_head, rho_tail=args.rho_tail,
        gamma=args.gamma, eta=args.eta, batchnorm=args.batchnorm, seed=args.seed, augment=not args.no_augment)
    x, y = _load_train(args)
    x_test, y_test = load_fashion_mnist("test", source=args.data)
    card = train_long_tailed(x, y, args.out, config, x_test, y_test, device=args.device, resume=args.resume,
                             verbose=not args.quiet, command=command, stop_after=args.stop_after)
    if "interrupted_at" in card:
        print(f"stopped after epoch {card['interrupted_at']}; continue with --resume")
        return 0
    test = card["metrics"]["test"]
    print(f"{args.optimizer}: test accuracy {test['accuracy']:.4f} (many {test['many_accuracy']:.4f}, medium "
          f"{test['medium_accuracy']:.4f}, few {test['few_accuracy']:.4f}); artefacts in {args.out}")
    return 0


def _cmd_evaluate(args, command: str) -> int:
    from art_purify.evaluation.command import evaluate_cli

    print(evaluate_cli(args, command))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``art-purify`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "art-purify " + " ".join(shlex.quote(a) for a in argv)
    handlers = {
        "train-classifier": _cmd_train_classifier,
        "train-diffusion": _cmd_train_diffusion,
        "train-long-tailed": _cmd_train_long_tailed,
        "evaluate": _cmd_evaluate,
    }
    try:
        return handlers[args.command](args, command)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"art-purify {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
