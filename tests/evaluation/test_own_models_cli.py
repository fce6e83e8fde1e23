# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""``art-purify evaluate`` on a user's own pieces, run as a user runs it (a subprocess): a classifier defined in a
test module with its weights in safetensors, data in an ``.npz``, a diffusers UNet directory and an AToP purifier
directory; one run per defence, on 1x8x8 data and on 3x32x32 (CIFAR-sized) data. Tiny random models: these tests
check the plumbing and the errors, not robustness."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from art_purify.evaluation.defences import DEFENCES
from art_purify.models import InpaintingGenerator
from tests.helpers import TINY_UNET
from tests.own_models import TinyLeNet

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "tests.own_models:TinyLeNet"
QUICK = ["--n", "4", "--max-iter", "2", "--eot", "1", "--votes", "1", "--square-queries", "5", "--quiet"]
QUICK += ["--no-sanity", "--batch-size", "4", "--attack", "pgd"]


def _run(*args, cwd=ROOT, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "art_purify", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def _pieces(root: Path, channels: int, side: int) -> dict:
    """Weights, data, UNet and AToP directories of one image shape, all drawn from fixed seeds."""
    from diffusers import UNet2DModel

    root.mkdir(parents=True, exist_ok=True)
    kwargs = {"in_channels": channels, "side": side}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TinyLeNet(**kwargs)
        unet = UNet2DModel(**{**TINY_UNET, "in_channels": channels, "out_channels": channels, "sample_size": side})
        generator = InpaintingGenerator(channels, width=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, root / "net.safetensors")
    rng = np.random.default_rng(0)
    np.savez(root / "data.npz", x=rng.integers(0, 256, (6, side, side, channels), dtype=np.uint8), y=np.arange(6) % 10)
    unet.save_pretrained(root / "unet", safe_serialization=True)
    atop = root / "atop"
    atop.mkdir()
    (atop / "config.json").write_text(json.dumps({"architecture": "InpaintingGenerator", **generator.config}))
    for name in ("generator.safetensors", "generator_pretrained.safetensors"):
        save_file({k: v.contiguous() for k, v in generator.state_dict().items()}, atop / name)
    return {"kwargs": json.dumps(kwargs), "root": root}


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    return _pieces(tmp_path_factory.mktemp("gray"), 1, 8)


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    return _pieces(tmp_path_factory.mktemp("colour"), 3, 32)


def _pieces_args(p: dict, defence: str) -> list:
    root = p["root"]
    args = ["--classifier", FACTORY, "--classifier-weights", root / "net.safetensors"]
    args += ["--classifier-kwargs", p["kwargs"], "--data", root / "data.npz", "--defence", defence]
    if defence in ("uniform", "heterogeneous", "reconstruction-search"):
        args += ["--diffusion", root / "unet"]
    if defence in ("atop", "atop-pretrained"):
        args += ["--atop", root / "atop"]
    if defence == "heterogeneous":
        args += ["--stages", "features.2,features.5"]
    if defence == "reconstruction-search":
        args += ["--search-iter", "2", "--nb-noise", "1"]
    return args


@pytest.mark.parametrize("defence", DEFENCES)
def test_evaluate_a_users_classifier_data_and_models_for_each_defence(gray, defence, tmp_path):
    out = tmp_path / "report"
    result = _run(*_pieces_args(gray, defence), *QUICK, "--out", out, "--no-figure")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["defence"] == defence and report["classifier"] == FACTORY and report["model"] == "fashion-mnist"
    evaluation = report["evaluation"]
    assert evaluation["n"] == 4 and 0.0 <= evaluation["clean_accuracy"] <= 1.0
    assert set(evaluation["attacks"]) == {"pgd"} and evaluation["robust_accuracy"] <= evaluation["clean_accuracy"]
    assert evaluation["random_defence"] == (
        defence in ("uniform", "heterogeneous", "random-masking", "atop-pretrained", "atop")
    )


@pytest.mark.parametrize("defence", ["heterogeneous", "atop"])
def test_evaluate_three_channel_32x32_pieces_through_the_command_line(colour, defence, tmp_path):
    out = tmp_path / "report"
    result = _run(*_pieces_args(colour, defence), *QUICK, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["evaluation"]["n"] == 4 and report["diffusion" if defence != "atop" else "atop"] is not None
    assert (out / "report.png").is_file()
    with np.load(out / "adversarial.npz") as arrays:
        assert arrays["x"].shape == (4, 3, 32, 32) and arrays["pgd"].shape == (4, 3, 32, 32)


def _error(capsys, *args) -> str:
    from art_purify.cli import main

    assert main(["evaluate", *map(str, args), *QUICK]) == 2
    return capsys.readouterr().err


def test_clear_errors_for_pieces_that_do_not_fit(gray, tmp_path, capsys):
    from diffusers import UNet2DModel

    root = gray["root"]
    base = ["--data", root / "data.npz", "--out", tmp_path / "out", "--classifier-kwargs", gray["kwargs"]]
    weights = ["--classifier-weights", root / "net.safetensors"]
    err = _error(capsys, "--classifier", "tests.no_such_module:Net", *weights, *base)
    assert "cannot import module 'tests.no_such_module'" in err
    err = _error(capsys, "--classifier", "tests.own_models:NoSuchNet", *weights, *base)
    assert "has no attribute 'NoSuchNet'" in err
    err = _error(capsys, "--classifier", "tests.own_models", *weights, *base)
    assert "must read 'package.module:name'" in err
    wide = ["--classifier-kwargs", json.dumps({"side": 8, "width": 6})]  # other widths than the weights'
    err = _error(capsys, "--classifier", FACTORY, *weights, *base[:4], *wide)
    assert "does not match" in err or "has shape" in err
    np.savez(tmp_path / "wide.npz", x=np.zeros((4, 1, 12, 12), np.float32), y=np.zeros(4, np.int64))
    err = _error(capsys, "--classifier", FACTORY, *weights, *base[2:], "--data", tmp_path / "wide.npz")
    assert "does not take inputs of shape (N, 1, 12, 12)" in err

    np.savez(tmp_path / "big.npz", x=np.full((4, 1, 8, 8), 2.0, np.float32), y=np.zeros(4, np.int64))
    err = _error(capsys, "--classifier", FACTORY, *weights, *base[2:], "--data", tmp_path / "big.npz")
    assert "values lie in [2, 2], outside" in err and "(0.0, 1.0)" in err
    np.savez(tmp_path / "odd.npz", x=np.zeros((4, 2, 8, 8), np.float32), y=np.zeros(4, np.int64))
    err = _error(capsys, "--classifier", FACTORY, *weights, *base[2:], "--data", tmp_path / "odd.npz")
    assert "cannot tell the channel axis" in err
    np.savez(tmp_path / "labels.npz", x=np.zeros((4, 1, 8, 8), np.float32), y=np.full(4, 12))
    err = _error(capsys, "--classifier", FACTORY, *weights, *base[2:], "--data", tmp_path / "labels.npz")
    assert "label 12 is not a class of the --classifier (10 classes)" in err
    err = _error(capsys, "--classifier", FACTORY, *weights, *base, "--nb-classes", "7")
    assert "--nb-classes 7 does not match the" in err and "whose logits have 10" in err

    hetero = ["--defence", "heterogeneous", "--diffusion", root / "unet"]
    err = _error(capsys, "--classifier", FACTORY, *weights, *base, *hetero, "--stages", "features.2,layer9")
    assert "has no module(s) ['layer9']" in err
    err = _error(capsys, "--classifier", FACTORY, *weights, *base, *hetero)
    assert "give --stages" in err

    pickled = tmp_path / "pickled"
    UNet2DModel.from_pretrained(root / "unet").save_pretrained(pickled, safe_serialization=False)
    assert (pickled / "diffusion_pytorch_model.bin").is_file()
    err = _error(capsys, "--classifier", FACTORY, *weights, *base, "--defence", "uniform", "--diffusion", pickled)
    assert "only safetensors weights are read" in err
    err = _error(capsys, *base[:4], "--defence", "uniform")  # the zoo's 1x28x28 UNet on 8x8 data
    assert "does not take inputs of shape" in err or "is for 1x28x28 images, the --data is 1x8x8" in err
    assert not (tmp_path / "out").exists()  # every refused call left no folder behind
