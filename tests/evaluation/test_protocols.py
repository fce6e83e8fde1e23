# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The evaluation protocols for random defences: N-evaluation (resubmission) figures, DW-box attacks with the noise
fixed per example, the resubmission-aware attack, and the exact-gradient check."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import RandomMaskingPyTorch, StraightThroughPyTorch
from art_purify.evaluation import PRESETS, AttackSettings, as_art_classifier, evaluate
from art_purify.evaluation.command import resolve_options
from art_purify.evaluation.resubmission_pgd import ResubmissionPGD
from art_purify.evaluation.sanity import exact_gradient_check
from art_purify.evaluation.seeding import DW_BOX_PHASE, phase_seed
from tests.evaluation.test_suite import _defended
from tests.helpers import linear_model

VOTES = 5


def _masked(seed=None, nb_eot=1):
    defence = RandomMaskingPyTorch.preset("rt2", seed=seed, nb_eot=nb_eot, device_type="cpu")
    return as_art_classifier(linear_model(), device="cpu", preprocessing_defences=[defence]), defence


def _data(n=12):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)).numpy()
    plain = as_art_classifier(linear_model(), device="cpu")
    return x, plain.predict(x).argmax(1)


@pytest.fixture(scope="module")
def report():
    classifier, _ = _masked()
    x, y = _data()
    settings = AttackSettings(eps=0.03, max_iter=3, batch_size=5)
    attacks = ["pgd", "pgd-dw", "resubmission"]
    return evaluate(classifier, x, y, attacks, settings, eot=2, votes=VOTES, seed=0, sanity=False, verbose=False), x


def test_n_evaluation_is_the_fraction_with_every_vote_on_the_true_class(report):
    report, _ = report
    data = report.to_json()
    y = np.asarray(report.labels)
    clean_counts = np.asarray(report.clean_vote_counts)
    assert (clean_counts.sum(1) == VOTES).all()
    clean_all = clean_counts[np.arange(len(y)), y] == VOTES
    assert report.clean_all_votes_correct == clean_all.tolist()
    worst = clean_all.copy()
    strict = report.clean_all_votes_accuracy < report.clean_accuracy
    for name, outcome in report.attacks.items():
        counts = np.asarray([e["attacks"][name]["vote_counts"] for e in data["per_example"]])
        assert (counts.sum(1) == VOTES).all()
        expected = clean_all & (counts[np.arange(len(y)), y] == VOTES)
        assert outcome.all_votes_robust == expected.tolist(), name
        assert outcome.all_votes_accuracy == pytest.approx(expected.mean())
        assert outcome.all_votes_accuracy <= outcome.robust_accuracy  # never above the majority vote
        assert not (expected & ~np.asarray(outcome.robust)).any()  # per example too
        strict |= outcome.all_votes_accuracy < outcome.robust_accuracy
        worst &= expected
    assert report.robust_all_votes == worst.tolist()
    assert report.robust_all_votes_accuracy <= report.robust_accuracy
    assert strict  # the figures differ somewhere on this random defence: the test can tell them apart


def test_dw_box_attack_is_judged_with_the_noise_it_saw(report):
    report, x = report
    outcome = report.attacks["pgd-dw"]
    assert outcome.fixed_noise_prediction is not None and report.attacks["pgd"].fixed_noise_prediction is None
    # the same deterministic function, rebuilt from the public API: noise fixed by the dw-box seed and the indices
    classifier, defence = _masked(seed=phase_seed(0, DW_BOX_PHASE))
    defence.set_params(noise="fixed")
    defence.set_noise_keys(x, radius=0.03)
    expected = classifier.predict(report.x_adv["pgd-dw"]).argmax(1)
    assert outcome.fixed_noise_prediction == expected.tolist()
    assert np.abs(report.x_adv["pgd-dw"] - x).max() <= 0.03 + 1e-6
    # fixed noise: one classification is the whole story, and two of them agree
    np.testing.assert_array_equal(classifier.predict(report.x_adv["pgd-dw"]).argmax(1), expected)


def test_dw_box_attacks_refuse_a_random_defence_without_fixed_noise():
    inner = RandomMaskingPyTorch.preset("rt2", seed=0, device_type="cpu")
    classifier = as_art_classifier(linear_model(), device="cpu", preprocessing_defences=[StraightThroughPyTorch(inner)])
    x, y = _data(4)
    with pytest.raises(ValueError, match="none in StraightThroughPyTorch"):
        evaluate(classifier, x, y, ["pgd-dw"], AttackSettings(eps=0.03, max_iter=1), sanity=False, verbose=False)


def test_resubmission_loss_at_high_temperature_is_the_eot_mean_of_art():
    classifier, defence = _masked(seed=4, nb_eot=3)
    x, y = _data(4)
    attack = ResubmissionPGD(classifier, eps=0.03, eps_step=0.01, max_iter=2, temperature=1e6)
    defence.reset_generator()
    broken, grad = attack.draws_and_gradient(x, y)
    defence.reset_generator()
    art = classifier.loss_gradient(x, np.eye(10, dtype=np.float32)[y])  # mean over the 4 x 3 rows
    np.testing.assert_allclose(grad, len(x) * art, rtol=1e-4, atol=1e-7)
    assert broken.shape == (4,) and ((0 <= broken) & (broken <= 3)).all()
    cold = ResubmissionPGD(classifier, eps=0.03, eps_step=0.01, max_iter=2, temperature=0.05)
    defence.reset_generator()
    assert not np.allclose(cold.draws_and_gradient(x, y)[1], grad)  # the weights follow the weakest draws


def test_resubmission_attack_stays_in_the_ball_and_breaks_an_undefended_model():
    plain = as_art_classifier(linear_model(), device="cpu")
    x, y = _data(8)
    x_adv = ResubmissionPGD(plain, eps=0.3, eps_step=0.06, max_iter=10).generate(x, y)
    assert np.abs(x_adv - x).max() <= 0.3 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (plain.predict(x_adv).argmax(1) != y).mean() > 0.5
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        ResubmissionPGD(plain, temperature=0.0)
    with pytest.raises(ValueError, match="select must be 'broken' or 'last'"):
        ResubmissionPGD(plain, select="best")
    last = ResubmissionPGD(plain, eps=0.3, eps_step=0.06, max_iter=10, select="last").generate(x, y)
    assert (plain.predict(last).argmax(1) != y).mean() > 0.5


def test_cascade_figures_are_cumulative_in_n_evaluation_too():
    classifier, _ = _masked()
    x, y = _data(24)
    settings = AttackSettings(eps=0.02, max_iter=2, batch_size=24)
    report = evaluate(
        classifier,
        x,
        y,
        ["pgd", "resubmission"],
        settings,
        eot=2,
        votes=VOTES,
        seed=0,
        cascade=True,
        sanity=False,
        verbose=False,
    )
    first, second = (np.asarray(report.attacks[n].vote_counts)[np.arange(len(y)), y] == VOTES for n in report.attacks)
    # the case that tells cumulative from per-attack figures: a vote lost to pgd (majority kept), all won back after
    assert (np.asarray(report.attacks["resubmission"].attacked) & second & ~first).any()
    so_far = np.asarray(report.clean_all_votes_correct)
    for name in ("pgd", "resubmission"):
        outcome = report.attacks[name]
        counts = np.asarray(outcome.vote_counts)[np.arange(len(y)), y]
        so_far = so_far & np.asarray(outcome.attacked) & (counts == VOTES)  # once broken in one vote, broken
        assert outcome.all_votes_robust == so_far.tolist(), name
        assert outcome.all_votes_accuracy <= outcome.robust_accuracy
    assert report.robust_all_votes == so_far.tolist()


def test_resubmission_restarts_spend_art_pgds_budget_and_accept_float64():
    model = linear_model().double()
    plain = as_art_classifier(model, device="cpu")
    x, y = _data(6)
    x = x.astype(np.float64)
    attack = ResubmissionPGD(plain, eps=0.05, eps_step=0.02, max_iter=2, num_random_init=3, seed=1)
    calls = []
    inner = attack.draws_and_gradient

    def counted(x_in, labels, with_gradient=True):
        calls.append((with_gradient, x_in.copy()))
        return inner(x_in, labels, with_gradient)

    attack.draws_and_gradient = counted
    x_adv = attack.generate(x, y)
    assert x_adv.dtype == np.float64 and np.abs(x_adv - x).max() <= 0.05 + 1e-12
    assert sum(g for g, _ in calls) == 3 * 2  # max(1, R) x max_iter gradient calls, as ART's PGD
    starts = [c for g, c in calls[::3]]  # every run begins with a gradient call at its random start
    assert all(np.abs(s - x).max() > 0 for s in starts) and not np.array_equal(starts[0], starts[1])
    again = ResubmissionPGD(plain, eps=0.05, eps_step=0.02, max_iter=2, num_random_init=3, seed=1).generate(x, y)
    np.testing.assert_array_equal(again, x_adv)  # seeded: the same random starts
    with pytest.raises(ValueError, match="num_random_init must be a non-negative integer"):
        ResubmissionPGD(plain, num_random_init=-1)


def test_exact_gradient_check_warns_when_only_surrogate_gradients_were_run():
    classifier = _defended("uniform")
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)).numpy()
    y = classifier.predict(x).argmax(1)
    settings = AttackSettings(eps=0.05, max_iter=1)
    exact = evaluate(classifier, x, y, ["pgd"], settings, sanity=False, verbose=False)
    assert exact_gradient_check(exact).passed is True
    classifier.preprocessing_operations[0].set_params(gradient="surrogate")
    surrogate = evaluate(classifier, x, y, ["pgd"], settings, sanity=False, verbose=False)
    check = exact_gradient_check(surrogate)
    assert check.passed is False and "gradient='surrogate'" in check.detail and "MEFA" in check.detail
    surrogate.settings = {**surrogate.settings, "attacks": ["transfer-fgsm", "square"]}  # no white-box attack
    assert exact_gradient_check(surrogate).passed is None


def test_thorough_preset_runs_every_protocol_with_the_exact_gradient():
    options = resolve_options(preset="thorough")
    assert options["gradient"] == "exact" == PRESETS["thorough"]["gradient"]
    assert {"pgd-dw", "apgd-dw", "resubmission", "pgd"} <= set(options["attacks"])
    assert options["votes"] > 1 and options["eot"] > 1
