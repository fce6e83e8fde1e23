# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""AToP's defences in the evaluation suite: built by name, evaluated from the command line, and the errors."""

import json

import pytest
import torch

from art_purify.cli import main
from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
from art_purify.evaluation.defences import build_defence
from art_purify.models import InpaintingGenerator


def test_build_defence_makes_the_transform_alone_and_the_purifier():
    rt = build_defence("random-masking", transform="rt1", nb_eot=3, seed=4, batch_size=16)
    assert isinstance(rt, RandomMaskingPyTorch) and rt.noise_std == 0 and rt.nb_eot == 3 and rt.seed == 4
    generator = InpaintingGenerator(1, width=4)
    atop = build_defence("atop", generator=generator, transform="rt3", nb_eot=2, seed=1, batch_size=16)
    assert isinstance(atop, AToPPurificationPyTorch) and atop.transform.nb_masks == 4 and atop.batch_size == 16
    with pytest.raises(ValueError, match="needs an AToP generator"):
        build_defence("atop")
    with pytest.raises(ValueError, match="only the exact gradient"):
        build_defence("atop-pretrained", generator=generator, gradient="surrogate")


def test_cli_evaluates_the_random_transform_with_eot_and_votes(tmp_path, capsys):
    out = tmp_path / "rt"
    argv = ["evaluate", "--defence", "random-masking", "--transform", "rt2", "--n", "6", "--max-iter", "2"]
    argv += ["--eot", "2", "--votes", "3", "--attack", "pgd,transfer-fgsm", "--sanity-n", "2", "--no-figure"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["defence"] == "random-masking" and report["transform"] == "rt2"
    evaluation = report["evaluation"]
    assert evaluation["robust_accuracy"] <= evaluation["clean_accuracy"] and evaluation["n"] == 6
    assert set(evaluation["attacks"]) == {"pgd", "transfer-fgsm"}
    assert "worst case" in capsys.readouterr().out


def test_transfer_attacks_are_made_on_the_classifier_without_its_defences():
    import numpy as np

    from art_purify.evaluation.attacks import AttackSettings, build_attack, undefended_classifier
    from art_purify.models import as_art_classifier
    from tests.helpers import image_batch, tiny_classifier

    model = tiny_classifier(torch.float32)
    defended = as_art_classifier(
        model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[RandomMaskingPyTorch.preset("rt2", seed=0)]
    )
    bare = undefended_classifier(defended)
    assert bare.preprocessing_defences is None and bare.model is model and defended.preprocessing_defences
    x = image_batch(4, torch.float32).numpy()
    y = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    settings = AttackSettings(eps=0.1, batch_size=4)
    via_suite = build_attack("transfer-fgsm", bare, settings).generate(x, y=y)
    from art.attacks.evasion import FastGradientMethod

    direct = FastGradientMethod(as_art_classifier(model, (1, 8, 8), 10, device="cpu"), eps=0.1).generate(x, y=y)
    np.testing.assert_allclose(via_suite, direct, atol=1e-6)
    assert np.abs(via_suite - x).max() == pytest.approx(0.1, abs=1e-5)


def test_cli_refuses_a_transform_for_other_defences(tmp_path, capsys):
    argv = ["evaluate", "--defence", "uniform", "--transform", "rt1", "--n", "2", "--out", str(tmp_path / "r")]
    assert main([*argv, "--quiet"]) == 2
    assert "--transform only applies to the AToP defences" in capsys.readouterr().err
