# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
import json

import numpy as np
import pytest
import torch

from art_purify.cli import main
from art_purify.engine.checkpoint import load_checkpoint
from art_purify.training import ClassifierTrainConfig, DiffusionTrainConfig, train_classifier, train_diffusion
from tests.helpers import TINY_UNET

TINY_CLF = dict(widths=[4, 4, 8, 8], blocks=[1, 1, 1, 1], batch_size=16, epochs=2, checkpoint_every=3, warmup_steps=2)


def _data(n=80, size=28):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, size, size, generator=gen).numpy()
    y = (np.arange(n) % 10).astype(np.int64)
    return x, y


def _same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_classifier_resume_matches_uninterrupted_run(tmp_path):
    x, y = _data()
    state = torch.get_rng_state()
    full = train_classifier(x, y, tmp_path / "full", ClassifierTrainConfig(**TINY_CLF), verbose=False)
    assert torch.equal(state, torch.get_rng_state()), "training must not touch the global RNG"
    cut = train_classifier(x, y, tmp_path / "cut", ClassifierTrainConfig(**TINY_CLF), stop_after=4, verbose=False)
    assert cut == {"interrupted_at": 4}
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 4
    train_classifier(x, y, tmp_path / "cut", ClassifierTrainConfig(**TINY_CLF), resume=True, verbose=False)
    _same_state(
        load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"],
        load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["model"],
    )
    assert full["steps"] == 10
    assert (tmp_path / "cut" / "classifier.safetensors").is_file()


def test_diffusion_resume_matches_uninterrupted_run(tmp_path):
    x, _ = _data(48, size=8)
    cfg = dict(steps=6, batch_size=8, checkpoint_every=2, warmup_steps=1, t_max=50)
    train_diffusion(x, tmp_path / "full", DiffusionTrainConfig(**cfg), unet_config=TINY_UNET, verbose=False)
    # interrupted mid-interval: the run resumes from the last checkpoint (step 2), redoing step 3
    train_diffusion(
        x, tmp_path / "cut", DiffusionTrainConfig(**cfg), unet_config=TINY_UNET, stop_after=3, verbose=False
    )
    train_diffusion(x, tmp_path / "cut", DiffusionTrainConfig(**cfg), unet_config=TINY_UNET, resume=True, verbose=False)
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert full["step"] == cut["step"] == 6
    _same_state(full["model"], cut["model"])
    _same_state(full["ema"], cut["ema"])
    card = json.loads((tmp_path / "cut" / "model_card.json").read_text())
    assert card["train_config"]["t_max"] == 50 and card["metrics"]["final_train_loss_mean_last_100"] > 0


def test_training_refuses_to_overwrite_and_to_resume_nothing(tmp_path):
    x, y = _data()
    train_classifier(x, y, tmp_path, ClassifierTrainConfig(**TINY_CLF), stop_after=3, verbose=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train_classifier(x, y, tmp_path, ClassifierTrainConfig(**TINY_CLF), verbose=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_classifier(x, y, tmp_path / "other", ClassifierTrainConfig(**TINY_CLF), resume=True, verbose=False)


def test_config_validation():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        ClassifierTrainConfig(epochs=0).validate()
    with pytest.raises(ValueError, match="t_max must be at most 1000"):
        DiffusionTrainConfig(t_max=2000).validate()
    with pytest.raises(ValueError, match="ema_decay"):
        DiffusionTrainConfig(ema_decay=1.0).validate()


def test_cli_train_classifier_interrupt_resume_and_card(idx_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train-classifier",
        "--data",
        str(idx_dir),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--checkpoint-every",
        "3",
        "--quiet",
    ]
    assert main(args + ["--stop-after", "5"]) == 0
    assert "continue with --resume" in capsys.readouterr().out
    assert main(args + ["--resume"]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["command"].startswith("art-purify train-classifier --data")
    assert card["steps"] == 16 and 0.0 <= card["metrics"]["test_accuracy"] <= 1.0
    assert card["metrics"]["test_examples"] == 64
    assert (out / "config.json").is_file() and (out / "classifier.safetensors").is_file()


def test_cli_train_reports_missing_data(tmp_path, capsys):
    code = main(["train-diffusion", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_purification_aware_training_resumes_exactly(tmp_path, tiny_unet):
    from art_purify.models import build_scheduler
    from art_purify.training.classifier import denoised_copies

    x, y = _data(48)
    diffusion = (tiny_unet, build_scheduler())
    copies = denoised_copies(tiny_unet, diffusion[1], x[:4], 50, 200, seed=1, verbose=False)
    assert copies.shape == (4, 1, 28, 28) and 0 <= copies.min() and copies.max() <= 1
    assert not np.allclose(copies, x[:4])
    cfg = dict(TINY_CLF, diffusion_augment=0.5)
    train_classifier(x, y, tmp_path / "full", ClassifierTrainConfig(**cfg), diffusion=diffusion, verbose=False)
    train_classifier(
        x, y, tmp_path / "cut", ClassifierTrainConfig(**cfg), diffusion=diffusion, stop_after=3, verbose=False
    )
    assert (tmp_path / "cut" / "denoised_train.npy").is_file()
    train_classifier(
        x, y, tmp_path / "cut", ClassifierTrainConfig(**cfg), diffusion=diffusion, resume=True, verbose=False
    )
    _same_state(
        load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"],
        load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["model"],
    )
    with pytest.raises(ValueError, match="needs a diffusion model"):
        train_classifier(x, y, tmp_path / "none", ClassifierTrainConfig(**cfg), verbose=False)
