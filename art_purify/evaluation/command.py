"""``art-purify evaluate``: the shipped (or named) models, an optional defence, the attack suite, a table, a JSON
report and a PNG figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from art_purify.evaluation.attacks import WHITE_BOX, AttackSettings, parse_attacks
from art_purify.evaluation.suite import PRESETS

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def check_out_dir(out: Path) -> Path:
    """Create ``out`` and make sure it can be written, or raise ``ValueError`` naming it."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"output directory {out} cannot be written: {err}") from err
    return out


def resolve_options(args) -> dict:
    """Fill the options left unset on the command line from ``--preset``."""
    preset = PRESETS[args.preset]
    attacks = parse_attacks(args.attack if args.attack else preset["attacks"])
    eps_step = args.eps_step if args.eps_step is not None else args.eps * preset["step_ratio"]
    settings = AttackSettings(
        eps=args.eps, eps_step=eps_step,
        max_iter=args.max_iter if args.max_iter is not None else preset["max_iter"],
        restarts=args.restarts if args.restarts is not None else preset["restarts"],
        eps_l2=args.eps_l2, square_queries=args.square_queries or preset["square_queries"],
        batch_size=args.batch_size,
    )
    return {
        "attacks": attacks,
        "settings": settings,
        "eot": args.eot if args.eot is not None else preset["eot"],
        "votes": args.votes if args.votes is not None else preset["votes"],
        "sanity_n": args.sanity_n if args.sanity_n is not None else preset["sanity_n"],
        "eps_curve": _factors(args.eps_curve) if args.eps_curve is not None else preset["eps_curve"],
    }


def _factors(text: str):
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise ValueError(f"--eps-curve must be comma-separated multiples of eps, got {text!r}.") from err


def evaluate_cli(args, command: str) -> str:
    """Run ``art-purify evaluate`` and return the text it prints."""
    import torch

    from art_purify.datasets import load_fashion_mnist
    from art_purify.evaluation.art_wrap import as_art_classifier
    from art_purify.evaluation.defences import build_defence
    from art_purify.evaluation.report import save_figure, save_report, summary_table
    from art_purify.evaluation.suite import evaluate
    from art_purify.utils import resolve_device
    from art_purify.zoo import load_classifier, load_diffusion

    options = resolve_options(args)
    if args.gradient == "bpda" and any(a in WHITE_BOX for a in options["attacks"]):
        raise ValueError("--gradient bpda makes every white-box attack a BPDA attack; use --attack bpda for the "
                         "BPDA reference and keep --gradient exact or surrogate for the real attacks.")
    out = check_out_dir(args.out)
    device = resolve_device(args.device)
    x, y = load_fashion_mnist("test", source=args.data)
    if args.n <= 0 or args.n > len(y):
        raise ValueError(f"--n must lie in [1, {len(y)}] for data source {args.data!r}, got {args.n}.")
    x, y = x[: args.n], y[: args.n]
    model = load_classifier(args.model, device=device)
    unet, scheduler = load_diffusion(args.model, device=device) if args.defence != "none" else (None, None)
    defence = build_defence(args.defence, unet, scheduler, model, gradient=args.gradient, seed=args.seed,
                            device_type="gpu" if device.type == "cuda" else "cpu", batch_size=args.batch_size)
    classifier = as_art_classifier(model, input_shape=x.shape[1:], nb_classes=10, device=device,
                                   preprocessing_defences=[defence] if defence is not None else None)
    report = evaluate(classifier, x, y, options["attacks"], options["settings"], eot=options["eot"],
                      votes=options["votes"], seed=args.seed, sanity=not args.no_sanity,
                      sanity_n=options["sanity_n"], eps_curve=options["eps_curve"],
                      checkpoint_dir=out / "partial", resume=args.resume, verbose=not args.quiet,
                      cascade=args.cascade)
    extra = {"command": command, "model": args.model, "defence": args.defence,
             "gradient": args.gradient if defence is not None else None, "preset": args.preset, "data": args.data,
             "seed": args.seed, "device": str(device), "torch_threads": torch.get_num_threads()}
    json_path = save_report(report, out / "report.json", extra)
    np.savez_compressed(out / "adversarial.npz", x=x, y=y, **{k.replace("-", "_"): v for k, v in report.x_adv.items()})
    lines = [summary_table(report, args.defence), f"report: {json_path}"]
    if not args.no_figure:
        title = f"{args.model}, defence {args.defence}" + (f" ({args.gradient} gradient)" if defence else "")
        figure = save_figure(report, classifier, x, out / "report.png", FASHION_MNIST_CLASSES, title=title)
        lines.append(f"figure: {figure}")
    return "\n".join(lines)
