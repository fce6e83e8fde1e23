# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The evaluation suite: any ART classifier with or without our defences, worst case, sanity checks, reports."""

import json

import numpy as np
import pytest
import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch

from art_purify.cli import main
from art_purify.evaluation import (
    ATTACKS,
    PRESETS,
    AttackSettings,
    as_art_classifier,
    build_defence,
    evaluate,
    format_table,
    load_report,
    parse_attacks,
    save_figure,
    save_report,
    summary_table,
)
from art_purify.evaluation.suite import PRESET_DESCRIPTIONS
from tests import helpers
from tests.helpers import linear_model


@pytest.fixture
def tiny_classifier():
    return as_art_classifier(linear_model(), device="cpu")


def _data(classifier, n=12, side=28):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, side, side, generator=gen).numpy()
    return x, classifier.predict(x).argmax(1)  # labels the model gets right: clean accuracy 1


class RoundingPyTorch(PreprocessorPyTorch):
    """A deliberately broken defence: quantisation with no straight-through gradient (the gradient is zero)."""

    def __init__(self):
        super().__init__(device_type="cpu", is_fitted=True, apply_fit=False, apply_predict=True)

    def forward(self, x, y=None):
        return torch.round(x * 4) / 4, y


def _defended(kind, nb_eot=1):
    model = helpers.tiny_classifier()
    defence = build_defence(
        kind, helpers.tiny_unet(), None, model, gradient="exact", nb_eot=nb_eot, seed=None, defence_grid=50
    )
    return as_art_classifier(
        model, input_shape=(1, 8, 8), nb_classes=10, device="cpu", preprocessing_defences=[defence]
    )


def test_undefended_classifier_under_every_attack(tiny_classifier):
    x, y = _data(tiny_classifier)
    settings = AttackSettings(eps=0.3, max_iter=5, batch_size=6, square_queries=20, eps_l2=3.0)
    every = [a for a in ATTACKS if a != "reconstruction-aware"]  # that one needs the search (its own tests)
    report = evaluate(tiny_classifier, x, y, every, settings, eot=3, votes=3, seed=0, sanity_n=6, verbose=False)
    assert report.clean_accuracy == 1.0 and not report.random_defence
    assert report.settings["eot"] == 1 and report.settings["votes"] == 1  # deterministic: no EOT, no voting
    assert set(report.attacks) == set(every)
    # per-example worst case: robust only if every attack failed
    expected = np.all([o.robust for o in report.attacks.values()], axis=0)
    assert report.robust == expected.tolist()
    assert report.robust_accuracy <= min(o.robust_accuracy for o in report.attacks.values())
    assert report.attacks["pgd"].robust_accuracy < 1.0
    checks = {c.name: c for c in report.checks}
    assert checks["randomness"].passed and checks["gradients"].passed and checks["large-eps"].passed
    assert checks["iterations"].passed
    assert [p["eps"] for p in report.eps_curve] == sorted(p["eps"] for p in report.eps_curve)
    assert report.eps_curve[0]["eps"] == 0.0 and report.eps_curve[-1]["eps"] == 1.0
    table = summary_table(report, "none")
    assert "worst case over all attacks" in table and "BPDA (reference only)" in table


def test_broken_defence_is_flagged_by_the_sanity_checks():
    classifier = as_art_classifier(linear_model(), device="cpu", preprocessing_defences=[RoundingPyTorch()])
    x, y = _data(classifier)
    settings = AttackSettings(eps=0.3, max_iter=8, batch_size=12)
    report = evaluate(classifier, x, y, ["pgd", "bpda"], settings, seed=0, sanity_n=12, verbose=False)
    flagged = {c.name for c in report.warnings}
    assert {"gradients", "large-eps", "bpda"} <= flagged, report.checks
    assert report.attacks["pgd"].robust_accuracy == 1.0  # the masked gradient fools PGD ...
    assert report.attacks["bpda"].robust_accuracy < 1.0  # ... BPDA is not fooled
    assert "WARNING [gradients]" in summary_table(report)


def test_healthy_run_has_no_warnings(tiny_classifier):
    x, y = _data(tiny_classifier)
    report = evaluate(
        tiny_classifier,
        x,
        y,
        ["pgd", "bpda"],
        AttackSettings(eps=0.3, max_iter=8, batch_size=12),
        seed=0,
        sanity_n=12,
        eps_curve=(),
        verbose=False,
    )
    assert report.warnings == [], report.checks
    assert [p["eps"] for p in report.eps_curve] == [0.0, 0.3, 1.0]  # no extra points: clean, eps, whole range


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_our_defences_with_eot_votes_and_reproducible_reports(kind, tmp_path):
    classifier = _defended(kind)
    x, _ = _data(classifier, n=6, side=8)
    y = np.arange(6) % 10
    settings = AttackSettings(eps=0.1, max_iter=2, batch_size=6)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()

    def run():
        return evaluate(classifier, x, y, "pgd,bpda", settings, eot=2, votes=3, seed=3, sanity_n=3, verbose=False)

    first, second = run(), run()
    assert first.random_defence and first.settings["eot"] == 2 and first.settings["votes"] == 3
    assert {c.name: c.passed for c in first.checks}["randomness"] is True
    assert first.to_json()["per_example"] == second.to_json()["per_example"]
    assert np.array_equal(np.random.get_state()[1], np_state) and torch.equal(torch.get_rng_state(), torch_state)
    defence = classifier.preprocessing_operations[0]
    assert defence.seed is None and defence.nb_eot == 1  # parameters restored after the run

    path = save_report(first, tmp_path / "report.json", {"command": "test"})
    loaded = load_report(path)
    assert loaded["command"] == "test" and loaded["evaluation"]["per_example"] == first.to_json()["per_example"]
    assert loaded["evaluation"]["settings"]["seed"] == 3 and loaded["versions"]["art"].startswith("1.")
    figure = save_figure(first, classifier, x, tmp_path / "report.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_random_defence_without_eot_is_flagged():
    classifier = _defended("uniform")
    x, _ = _data(classifier, n=4, side=8)
    report = evaluate(
        classifier,
        x,
        np.arange(4),
        "pgd",
        AttackSettings(eps=0.1, max_iter=2, batch_size=4),
        eot=1,
        votes=1,
        seed=0,
        sanity_n=2,
        verbose=False,
    )
    assert "randomness" in {c.name for c in report.warnings}


def test_evaluate_rejects_bad_input(tiny_classifier, tmp_path):
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="eps must lie in"):
        evaluate(tiny_classifier, x, y, settings=AttackSettings(eps=2.0), verbose=False)
    with pytest.raises(ValueError, match=r"y holds label 12 \(at index 2\); labels must lie in \[0, 10\)"):
        evaluate(tiny_classifier, x, np.array([0, 1, 12, 3]), verbose=False)
    with pytest.raises(ValueError, match="1-D array of integer labels, got shape"):
        evaluate(tiny_classifier, x, np.zeros((4, 10), dtype=np.int64), verbose=False)
    with pytest.raises(ValueError, match="outside clip_values"):
        evaluate(tiny_classifier, x + 1.0, y, verbose=False)
    x_nan = x.copy()
    x_nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate(tiny_classifier, x_nan, y, verbose=False)
    with pytest.raises(ValueError, match="non-empty"):
        evaluate(tiny_classifier, x[:0], y[:0], verbose=False)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        evaluate(tiny_classifier, x, y + 10, verbose=False)
    with pytest.raises(ValueError, match="unknown attack 'fgsm'"):
        evaluate(tiny_classifier, x, y, "pgd,fgsm", verbose=False)
    with pytest.raises(ValueError, match="max_iter must be a positive integer"):
        AttackSettings(max_iter=0)
    with pytest.raises(ValueError, match="votes must be a positive integer"):
        evaluate(tiny_classifier, x, y, votes=0, verbose=False)
    with pytest.raises(FileNotFoundError):
        load_report(tmp_path / "absent.json")
    (tmp_path / "other.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not an art_purify evaluation report"):
        load_report(tmp_path / "other.json")


def test_attack_names_and_presets():
    assert parse_attacks("PGD-EOT, square ,pgd") == ["pgd", "square"]
    assert set(PRESET_DESCRIPTIONS) == set(PRESETS)
    paper = PRESETS["paper"]
    assert paper["max_iter"] == 200 and paper["eot"] == 20
    assert paper["step_ratio"] * 8 / 255 == pytest.approx(0.007)


def test_format_table():
    table = format_table([{"a": 1, "bb": "x"}, {"a": 22, "bb": "yyy"}])
    lines = table.splitlines()
    assert lines[0].split() == ["a", "bb"] and lines[3].split() == ["22", "yyy"]


@pytest.mark.slow
def test_cli_evaluate_shipped_model(tmp_path, capsys):
    out = tmp_path / "report"
    argv = [
        "evaluate",
        "--n",
        "12",
        "--max-iter",
        "3",
        "--sanity-n",
        "4",
        "--attack",
        "bpda,pgd",
        "--cascade",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "worst case over all attacks" in printed and "sanity checks:" in printed and "report.png" in printed
    report = load_report(out / "report.json")
    evaluation = report["evaluation"]
    assert evaluation["n"] == 12 and evaluation["settings"]["eps"] == 0.1 and report["preset"] == "quick"
    assert evaluation["settings"]["cascade"] and evaluation["settings"]["attacks"] == ["pgd", "bpda"]
    assert evaluation["robust_accuracy"] <= evaluation["clean_accuracy"]
    assert len(evaluation["per_example"]) == 12 and report["command"].startswith("art-purify evaluate")
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(out / "adversarial.npz") as arrays:
        assert arrays["pgd"].shape == (12, 1, 28, 28)


def test_cli_evaluate_bad_arguments(tmp_path, capsys):
    assert main(["evaluate", "--n", "5000", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--n must lie in [1, 1000]" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["evaluate", "--n", "5", "--out", str(blocker / "sub"), "--quiet"]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert main(["evaluate", "--n", "5", "--eps", "1.5", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "eps must lie in" in capsys.readouterr().err
    assert main(["evaluate", "--model", "nope", "--n", "5", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "unknown zoo classifier" in capsys.readouterr().err
    assert main(["evaluate", "--attack", "deepfool", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "unknown attack 'deepfool'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--defence", "jpeg", "--out", str(tmp_path / "r")])
    assert "invalid choice: 'jpeg'" in capsys.readouterr().err


def test_interrupted_evaluation_resumes_to_the_same_outcomes(tmp_path, monkeypatch):
    import art_purify.evaluation.runner as runner_module

    classifier = _defended("uniform")
    x, _ = _data(classifier, n=4, side=8)
    y = np.arange(4)
    settings = AttackSettings(eps=0.1, max_iter=2, batch_size=4)
    kwargs = dict(eot=2, votes=3, seed=5, sanity=False, verbose=False)
    full = evaluate(classifier, x, y, "pgd,bpda", settings, checkpoint_dir=tmp_path / "a", **kwargs)
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        "meta.json",
        "b00000-clean.npz",
        "b00000-pgd.npz",
        "b00000-bpda.npz",
    }
    (tmp_path / "a" / "b00000-bpda.npz").unlink()  # as if interrupted during the BPDA attack
    built = []
    real_build = runner_module.build_attack
    monkeypatch.setattr(
        runner_module, "build_attack", lambda name, *a, **k: built.append(name) or real_build(name, *a, **k)
    )
    resumed = evaluate(classifier, x, y, "pgd,bpda", settings, checkpoint_dir=tmp_path / "a", resume=True, **kwargs)
    assert built == ["bpda"]  # pgd and the clean votes came from the checkpoint
    assert resumed.to_json()["per_example"] == full.to_json()["per_example"]
    # the reported time is the whole run's: it includes the phases done before the interruption
    assert resumed.time_s >= resumed.attacks["pgd"].time_s + resumed.attacks["bpda"].time_s
    assert resumed.attacks["pgd"].time_s == pytest.approx(full.attacks["pgd"].time_s)
    with pytest.raises(ValueError, match="other data or settings"):
        evaluate(
            classifier, x, y, "pgd,bpda", settings, checkpoint_dir=tmp_path / "a", resume=True, **{**kwargs, "seed": 6}
        )
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate(classifier, x, y, "pgd", settings, checkpoint_dir=tmp_path / "b", resume=True, **kwargs)


def test_resume_is_refused_for_other_model_weights(tmp_path):
    classifier = as_art_classifier(linear_model(), device="cpu")
    x, y = _data(classifier, n=4)
    settings = AttackSettings(eps=0.1, max_iter=2, batch_size=4)
    evaluate(classifier, x, y, "pgd", settings, sanity=False, checkpoint_dir=tmp_path, verbose=False)
    (tmp_path / "keep.npz").write_bytes(b"user file")
    with torch.no_grad():
        classifier.model[1].weight.add_(0.01)
    with pytest.raises(ValueError, match="other data or settings"):
        evaluate(classifier, x, y, "pgd", settings, sanity=False, checkpoint_dir=tmp_path, resume=True, verbose=False)
    evaluate(classifier, x, y, "pgd", settings, sanity=False, checkpoint_dir=tmp_path, verbose=False)  # fresh run
    assert (tmp_path / "keep.npz").read_bytes() == b"user file"  # only the suite's own files are replaced


def test_cascade_attacks_only_the_examples_still_robust(tiny_classifier, tmp_path):
    x, y = _data(tiny_classifier, n=16)
    settings = AttackSettings(eps=0.08, max_iter=3, batch_size=8, square_queries=30)
    kwargs = dict(seed=1, sanity_n=8, eps_curve=(), verbose=False)
    plain = evaluate(tiny_classifier, x, y, "pgd,bpda,square", settings, **kwargs)
    cascade = evaluate(
        tiny_classifier, x, y, "square,bpda,pgd", settings, cascade=True, checkpoint_dir=tmp_path, **kwargs
    )
    assert list(cascade.attacks) == ["pgd", "bpda", "square"]  # white-box first, then BPDA, then Square
    assert cascade.settings["cascade"] is True
    # the first attack runs on the clean-correct examples (all of them here, so the outcome is that of a plain run)
    assert cascade.attacks["pgd"].attacked == cascade.clean_correct
    assert cascade.attacks["pgd"].robust == plain.attacks["pgd"].robust
    assert 0 < sum(cascade.attacks["pgd"].robust) < len(y), "the test needs a partly successful first attack"
    robust = np.asarray(cascade.attacks["pgd"].robust)
    for name in ("bpda", "square"):  # each later attack runs on what survived the earlier ones
        outcome = cascade.attacks[name]
        assert outcome.attacked == robust.tolist()
        assert all(p == -1 for p, a in zip(outcome.prediction, outcome.attacked) if not a)
        assert np.isnan(np.asarray(outcome.vote_margin)[~robust]).all()
        robust = np.asarray(outcome.robust)
    assert cascade.robust == robust.tolist() and cascade.robust_accuracy == cascade.attacks["square"].robust_accuracy
    assert cascade.robust_accuracy <= plain.attacks["pgd"].robust_accuracy
    checks = {c.name: c for c in cascade.checks}
    assert "examples every gradient attack failed on" in checks["black-box"].detail
    assert "(cumulative)" in summary_table(cascade)
    assert "attacked" in cascade.to_json()["per_example"][0]["attacks"]["bpda"]
    path = save_report(cascade, tmp_path / "report.json")
    assert "NaN" not in path.read_text()  # strict JSON: the margins of examples not attacked are null
    skipped = int(np.flatnonzero(~np.asarray(cascade.attacks["bpda"].attacked))[0])
    assert load_report(path)["evaluation"]["per_example"][skipped]["attacks"]["bpda"]["vote_margin"] is None
    with pytest.raises(ValueError, match="other data or settings"):  # cascade is part of the checkpoint's settings
        evaluate(tiny_classifier, x, y, "pgd,bpda,square", settings, checkpoint_dir=tmp_path, resume=True, **kwargs)


def test_cascade_still_flags_a_masking_defence():
    classifier = as_art_classifier(linear_model(), device="cpu", preprocessing_defences=[RoundingPyTorch()])
    x, y = _data(classifier)
    report = evaluate(
        classifier,
        x,
        y,
        ["pgd", "bpda"],
        AttackSettings(eps=0.3, max_iter=8, batch_size=12),
        seed=0,
        sanity_n=12,
        cascade=True,
        verbose=False,
    )
    bpda = {c.name: c for c in report.warnings}["bpda"]
    assert "BPDA broke" in bpda.detail and report.attacks["bpda"].robust_accuracy < 1.0


class GaussianNoisePyTorch(PreprocessorPyTorch):
    """A random defence whose votes flip near the decision boundary: the chance flips the cascade checks measure."""

    def __init__(self):
        super().__init__(device_type="cpu", is_fitted=True, apply_fit=False, apply_predict=True)

    def forward(self, x, y=None):
        return x + 0.6 * torch.randn_like(x), y


def test_cascade_checks_subtract_the_chance_flips_of_a_random_defence():
    x, y = _data(as_art_classifier(linear_model(), device="cpu"), n=60)
    classifier = as_art_classifier(linear_model(), device="cpu", preprocessing_defences=[GaussianNoisePyTorch()])
    # Square with a tiny budget and one query does next to nothing: whatever it "breaks" is voting noise
    settings = AttackSettings(eps=0.002, max_iter=2, batch_size=32, square_queries=1)
    report = evaluate(
        classifier,
        x,
        y,
        "pgd,square",
        settings,
        eot=2,
        votes=1,
        seed=3,
        sanity_n=8,
        eps_curve=(),
        cascade=True,
        verbose=False,
    )
    assert report.random_defence
    square = report.attacks["square"]
    broken = int(np.sum(np.asarray(square.attacked) & ~np.asarray(square.robust)))
    assert broken / report.n > 0.03, "the test needs survivors that flip by chance"
    check = {c.name: c for c in report.checks}["black-box"]
    assert check.passed is True and "by chance" in check.detail, check.detail
