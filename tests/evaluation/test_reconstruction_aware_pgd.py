# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The defence-aware attack on the reconstruction search, and the search inside the evaluation suite."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
from art_purify.evaluation import AttackSettings, as_art_classifier, build_defence, evaluate, save_figure
from art_purify.cli import main
from art_purify.evaluation.reconstruction_aware_pgd import ReconstructionAwarePGD, ere_defence_of
from art_purify.evaluation.seeding import seeded_phase
from tests import helpers


def _searched(**kw):
    kw = {"max_iter": 2, "nb_noise": 1, "step_size": 0.02, "radius": 0.2, "device_type": "cpu", **kw}
    defence = ReconstructionSearchPyTorch(helpers.tiny_unet(), **kw)
    model = helpers.tiny_classifier()
    return as_art_classifier(model, input_shape=(1, 8, 8), device="cpu", preprocessing_defences=[defence])


def _data(n=6):
    x = helpers.image_batch(n, dtype=torch.float32, seed=2).numpy()
    return x, np.arange(n) % 10


def test_the_attack_stays_in_the_ball_and_its_ere_term_lowers_the_ere():
    classifier = _searched()
    defence = ere_defence_of(classifier)
    x, y = _data()
    plain = ReconstructionAwarePGD(classifier, eps=0.1, eps_step=0.05, max_iter=3, ere_weight=0.0).generate(x, y)
    aware = ReconstructionAwarePGD(classifier, eps=0.1, eps_step=0.05, max_iter=3, ere_weight=5.0).generate(x, y)
    for x_adv in (plain, aware):
        assert x_adv.dtype == np.float32 and x_adv.shape == x.shape
        assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    ere = {k: defence.ere(torch.from_numpy(v)).detach() for k, v in (("plain", plain), ("aware", aware))}
    moved = np.abs(plain - x).reshape(len(x), -1).max(1) > 0  # images the attack worked on (not wrong at x)
    assert moved.any() and (ere["aware"][moved] < ere["plain"][moved]).all()


def test_images_misclassified_at_the_input_are_returned_as_they_are():
    classifier = _searched()
    x, _ = _data()
    y = classifier.predict(x).argmax(1)
    wrong = (y + 1) % 10
    x_adv = ReconstructionAwarePGD(classifier, eps=0.1, eps_step=0.05, max_iter=2).generate(x, wrong)
    assert np.array_equal(x_adv, x)


def test_bad_parameters_and_a_classifier_without_the_search():
    with pytest.raises(ValueError, match="ere_weight must be a non-negative"):
        ReconstructionAwarePGD(_searched(), ere_weight=-1.0)
    with pytest.raises(ValueError, match="max_iter must be a positive integer"):
        ReconstructionAwarePGD(_searched(), max_iter=0)
    plain = as_art_classifier(helpers.linear_model(), device="cpu")
    with pytest.raises(ValueError, match="needs a preprocessing defence with an ere"):
        ReconstructionAwarePGD(plain)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError, match="'reconstruction-aware' needs the reconstruction-search defence"):
        evaluate(plain, x, np.array([0, 1]), ["pgd", "aware"], verbose=False)
    with pytest.raises(ValueError, match="ere_weight must be a non-negative"):
        AttackSettings(ere_weight=-0.5)


def test_the_search_is_deterministic_in_the_suite_and_keeps_its_seed(tmp_path):
    classifier = _searched(seed=7)
    defence = ere_defence_of(classifier)
    x, y = _data()
    with seeded_phase(classifier, 0, "attack/pgd"):
        assert defence.seed == 7  # a phase seed would change the fixed noise draws: the attacked defence must not
    settings = AttackSettings(eps=0.1, max_iter=2, batch_size=6, square_queries=3)

    def run():
        names = "pgd,apgd-ce,reconstruction-aware,bpda,square"
        return evaluate(classifier, x, y, names, settings, eot=4, votes=3, seed=1, sanity_n=3, verbose=False)

    first, second = run(), run()
    assert not first.random_defence and first.settings["eot"] == 1 and first.settings["votes"] == 1
    assert {c.name: c.passed for c in first.checks}["randomness"] is True
    assert first.to_json()["per_example"] == second.to_json()["per_example"]
    assert defence.seed == 7 and "reconstruction-aware" in first.attacks
    assert first.settings["defence_params"][0]["seed"] == 7
    figure = save_figure(first, classifier, x, tmp_path / "report.png")  # with the ERE trajectory panels
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_defence_makes_the_search():
    defence = build_defence("reconstruction-search", helpers.tiny_unet(), seed=3, gradient="bpda", max_iter=4)
    assert isinstance(defence, ReconstructionSearchPyTorch)
    assert (defence.seed, defence.gradient, defence.max_iter) == (3, "bpda", 4)
    with pytest.raises(ValueError, match="gradient must be one of"):
        build_defence("reconstruction-search", helpers.tiny_unet(), gradient="surrogate")


def test_the_command_line_names_the_searchs_flags(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["evaluate", "--defence", "uniform", "--sigma", "0.3", "--n", "2", "--out", out, "--quiet"]) == 2
    assert "--sigma only apply to defence 'reconstruction-search'" in capsys.readouterr().err
    argv = ["evaluate", "--defence", "reconstruction-search", "--search-iter", "-1", "--n", "2", "--out", out]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--search-iter must be a non-negative integer" in err and "--max-iter" not in err
    argv = ["evaluate", "--defence", "reconstruction-search", "--gradient", "surrogate", "--n", "2", "--out", out]
    assert main([*argv, "--quiet"]) == 2
    assert "--gradient must be one of ('exact', 'truncated', 'bpda')" in capsys.readouterr().err
