# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""benchmarks/campaign_progress.py: the per-example worst case read from cascade checkpoints, and the paired
comparison (exact McNemar test) that docs/results.md quotes."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "campaign_progress.py"
_spec = importlib.util.spec_from_file_location("campaign_progress", _SCRIPT)
progress = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(progress)


def _phase(run, batch, name, prediction, attacked=None):
    (run / "partial").mkdir(parents=True, exist_ok=True)
    arrays = {"prediction": np.asarray(prediction), "time_s": np.float64(1.0)}
    if attacked is not None:
        arrays["attacked"] = np.asarray(attacked, bool)
    np.savez(run / "partial" / f"b{batch:05d}-{name}.npz", fingerprint=np.str_("f"), **arrays)


@pytest.fixture(name="runs")
def _runs(tmp_path):
    labels = np.array([0, 1, 2, 3, 4, 5])
    a, b = tmp_path / "a", tmp_path / "b"
    # run a: batch 0 (examples 0-2) complete; batch 1 (3-5) without its last attack, so it does not count
    _phase(a, 0, "clean", [0, 1, 9])  # example 2 misclassified
    _phase(a, 0, "apgd-ce", [0, 7, 9], attacked=[True, True, False])  # breaks 1
    _phase(a, 0, "square", [0, 7, 9], attacked=[True, False, False])
    _phase(a, 1, "clean", [3, 4, 5])
    _phase(a, 1, "apgd-ce", [3, 4, 5], attacked=[True, True, True])
    # run b: both batches complete
    _phase(b, 0, "clean", [0, 1, 2])
    _phase(b, 0, "apgd-ce", [8, 1, 2], attacked=[True, True, True])  # breaks 0
    _phase(b, 0, "square", [8, 1, 2], attacked=[False, True, True])
    _phase(b, 1, "clean", [3, 4, 5])
    _phase(b, 1, "apgd-ce", [3, 4, 5], attacked=[True, True, True])
    _phase(b, 1, "square", [3, 0, 5], attacked=[True, True, True])  # breaks 4
    return a, b, labels


def test_worst_case_only_counts_batches_with_every_phase(runs):
    a, b, labels = runs
    assert progress.worst_case(a, labels) == {0: True, 1: False, 2: False}
    assert progress.worst_case(b, labels) == {0: False, 1: True, 2: True, 3: True, 4: False, 5: True}


def test_compare_pairs_the_common_examples(runs):
    a, b, labels = runs
    text = progress.compare(a, b, labels)
    assert "on the 3 examples" in text
    assert "robust in A 1/3" in text and "in B 2/3" in text
    assert "robust in both 0, only in A 1, only in B 2, in neither 0" in text
    assert text.endswith("clean predictions differ on 1")  # example 2; these checkpoints have no vote counts


def test_compare_counts_clean_vote_counts_that_differ(runs, tmp_path):
    a, _, labels = runs
    c = tmp_path / "c"
    (c / "partial").mkdir(parents=True)
    for run, counts in ((a, [[5, 0, 0], [0, 5, 0], [0, 0, 5]]), (c, [[5, 0, 0], [0, 4, 1], [0, 0, 5]])):
        np.savez(
            run / "partial" / "b00000-clean.npz",
            prediction=np.array([0, 1, 2]),
            counts=np.array(counts),
            time_s=np.float64(1.0),
        )
    for name in ("apgd-ce", "square"):
        (c / "partial" / f"b00000-{name}.npz").write_bytes((a / "partial" / f"b00000-{name}.npz").read_bytes())
    assert progress.compare(a, c, labels).endswith("clean predictions differ on 0, clean vote counts on 1")


@pytest.mark.parametrize("only_a,only_b", [(0, 0), (11, 0), (1, 5), (3, 3), (7, 20), (40, 25)])
def test_mcnemar_equals_the_binomial_test(only_a, only_b):
    expected = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b).pvalue
    assert progress.mcnemar_p(only_a, only_b) == pytest.approx(expected, rel=1e-12)
