# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Bring your own model and data: a torchvision classifier and a data file, through purification and the attack suite.

Everything here is a stand-in for what you already have, built in a few CPU minutes:

1. your data file: a CIFAR-sized ``.npz`` (``x_train``/``y_train``, ``x_test``/``y_test``; uint8, channels last, as
   many data sets ship) of synthetic coloured shapes, unless you pass ``--data yours.npz``;
2. your classifier: a torchvision ResNet (``torchvision.models.resnet.ResNet``, one block per stage), trained briefly
   and saved as a safetensors state dict, the way you would save your own;
3. your diffusion model: a small diffusers UNet trained with ``train_diffusion`` (a diffusers directory), unless you
   pass ``--diffusion DIR`` (any ``UNet2DModel`` saved with ``save_pretrained``).

Then the heterogeneous diffusion purifier defends the classifier (saliency from the ResNet's ``layer1``..``layer4``),
and the suite attacks it through its surrogate gradient, from Python and, the same run, from the command line.

    python examples/bring_your_own.py --out runs/byo                      # about 1.5 minutes on one CPU core
    python examples/bring_your_own.py --out runs/byo --data my.npz --diffusion my_ddpm/

Run it from the repository root (the command line imports the factory as ``examples.bring_your_own:tiny_resnet``
from the current directory). The command line equivalent of the last step is printed at the end. The tiny models make the figures meaningless as
robustness numbers: this is a walk-through of the plumbing (see docs/own_models.md).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def tiny_resnet(num_classes: int = 10) -> torch.nn.Module:
    """A torchvision ResNet with one BasicBlock per stage (``layer1``..``layer4``), the stand-in for your model; the
    factory the command line imports as ``examples.bring_your_own:tiny_resnet``."""
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)


def synthetic_cifar(path: Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> Path:
    """Coloured squares, discs and bars on noise, 10 classes (shape x colour), 32x32x3 uint8, channels last."""
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    colours = np.array([[230, 40, 40], [40, 200, 60], [50, 80, 230], [220, 200, 40], [200, 60, 200]], np.float32)

    def make(n):
        y = gen.integers(0, 10, n)
        x = gen.normal(90, 30, (n, 32, 32, 3)).astype(np.float32)
        for i, label in enumerate(y):
            cy, cx, r = gen.integers(10, 22), gen.integers(10, 22), gen.integers(5, 9)
            shape = label % 2
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if shape else (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
            x[i][mask] = colours[label // 2] + gen.normal(0, 15, 3)
        return np.clip(x, 0, 255).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = make(n_train), make(n_test)
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def train_classifier(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    """A few epochs of Adam, seeded; stands in for however you trained your model."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order) - 63, 64):
            idx = order[i : i + 64]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bring_your_own"))
    parser.add_argument("--data", type=Path, help="Your .npz (x_train/y_train, x_test/y_test); default: synthetic")
    parser.add_argument("--diffusion", type=Path, help="Your diffusers UNet directory; default: train a small one")
    parser.add_argument("--epochs", type=int, default=3, help="Classifier training epochs (default 3)")
    parser.add_argument("--diffusion-steps", type=int, default=200, help="UNet training steps (default 200)")
    parser.add_argument("--n", type=int, default=8, help="Test images attacked (default 8)")
    parser.add_argument("--max-iter", type=int, default=3, help="Attack iterations (default 3)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from safetensors.torch import save_file

    from art_purify.datasets import load_dataset
    from art_purify.defences.preprocessor import HeterogeneousDiffusionPurificationPyTorch
    from art_purify.evaluation import as_art_classifier, evaluate, load_report, summary_table
    from art_purify.evaluation.command import resolve_options, run_evaluate
    from art_purify.training import DiffusionTrainConfig, train_diffusion
    from art_purify.zoo import load_diffusion_dir
    from art_purify.zoo.user import load_user_classifier

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = args.data or synthetic_cifar(args.out / "data.npz", seed=args.seed)
    x_train, y_train = load_dataset(data, "train")  # float32 (N, 3, 32, 32) in [0, 1]
    x_test, y_test = load_dataset(data, "test")
    nb_classes = int(max(y_train.max(), y_test.max())) + 1

    weights = args.out / "resnet.safetensors"
    if not weights.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = tiny_resnet(nb_classes)
        train_classifier(model, x_train, y_train, args.epochs, args.seed)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    # as the command line does it: factory + safetensors
    model = load_user_classifier("examples.bring_your_own:tiny_resnet", weights, {"num_classes": nb_classes})
    with torch.no_grad():
        clean = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    print(f"classifier: clean test accuracy {clean:.3f} ({time.time() - t0:.0f} s so far)")

    diffusion = args.diffusion
    if diffusion is None:
        diffusion = args.out / "ddpm"
        if not (diffusion / "unet" / "config.json").is_file():
            unet_config = {
                "sample_size": 32,
                "in_channels": 3,
                "out_channels": 3,
                "layers_per_block": 1,
                "block_out_channels": [16, 32],
                "down_block_types": ["DownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "UpBlock2D"],
                "norm_num_groups": 8,
            }
            config = DiffusionTrainConfig(
                steps=args.diffusion_steps, batch_size=32, checkpoint_every=50, warmup_steps=20, hflip=False
            )
            train_diffusion(x_train, diffusion, config, unet_config=unet_config, verbose=False, resume=False)
    unet, scheduler = load_diffusion_dir(diffusion)
    print(f"diffusion model: {diffusion} ({time.time() - t0:.0f} s so far)")

    # --- the Python API: your model, an art_purify defence, ART's attacks ---
    defence = HeterogeneousDiffusionPurificationPyTorch(
        unet,
        model,
        scheduler,
        stage_names=["layer1", "layer2", "layer3", "layer4"],
        gradient="surrogate",
        seed=args.seed,
        batch_size=8,  # as the command line's --batch-size: the noise draws depend on the internal batching
        device_type="cpu",
    )
    classifier = as_art_classifier(
        model, input_shape=x_test.shape[1:], nb_classes=nb_classes, preprocessing_defences=[defence]
    )
    # the command line's settings (its "quick" preset filled in), so that both runs below are the same evaluation
    options = resolve_options(attacks="pgd", eps=8 / 255, max_iter=args.max_iter, batch_size=8, eot=2, votes=3)
    report = evaluate(
        classifier,
        x_test[: args.n],
        y_test[: args.n],
        options["attacks"],
        options["settings"],
        eot=options["eot"],
        votes=options["votes"],
        seed=args.seed,
        sanity=False,
    )
    print(summary_table(report, "heterogeneous"))

    # --- the same from the command line (run here through its function) ---
    command = [
        "art-purify evaluate --classifier examples.bring_your_own:tiny_resnet",
        f"--classifier-weights {weights} --classifier-kwargs '{json.dumps({'num_classes': nb_classes})}'",
        f"--data {data} --diffusion {diffusion} --defence heterogeneous --stages layer1,layer2,layer3,layer4",
        f"--gradient surrogate --attack pgd --eps {8 / 255:.6f} --max-iter {args.max_iter} --eot 2 --votes 3",
        f"--n {args.n} --no-sanity --batch-size 8 --out {args.out / 'report'}",
    ]
    print(
        run_evaluate(
            out=args.out / "report",
            data=str(data),
            n=args.n,
            classifier="examples.bring_your_own:tiny_resnet",
            classifier_weights=weights,
            classifier_kwargs={"num_classes": nb_classes},
            defence="heterogeneous",
            stages=["layer1", "layer2", "layer3", "layer4"],
            diffusion=diffusion,
            gradient="surrogate",
            attacks="pgd",
            eps=8 / 255,
            max_iter=args.max_iter,
            eot=2,
            votes=3,
            sanity=False,
            batch_size=8,
            seed=args.seed,
            verbose=False,
            command=" ".join(command),
        )
    )
    print("command line equivalent:\n  " + " \\\n    ".join(command))
    cli = load_report(args.out / "report" / "report.json")
    same = cli["evaluation"]["robust"] == report.robust
    print(f"the Python and the command-line runs agree on every example: {same}")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
