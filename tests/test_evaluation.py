import json

import numpy as np
import pytest
import torch

from art_purify.cli import main
from art_purify.evaluation import as_art_classifier, evaluate_pgd, format_table


@pytest.fixture
def tiny_classifier():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))  # any logits module plugs in
    return as_art_classifier(model, device="cpu")


def test_any_torch_module_is_evaluated(tiny_classifier):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 1, 28, 28, generator=gen).numpy()
    y = tiny_classifier.predict(x).argmax(1)  # labels the model gets right: clean accuracy 1
    result = evaluate_pgd(tiny_classifier, x, y, eps=0.3, max_iter=5, batch_size=6, verbose=False)
    assert result.clean_accuracy == 1.0
    assert result.robust_accuracy < 1.0
    assert result.n == 12 and len(result.robust_correct) == 12
    assert all(c or not r for c, r in zip(result.clean_correct, result.robust_correct))


def test_evaluate_rejects_bad_input(tiny_classifier):
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="eps must lie in"):
        evaluate_pgd(tiny_classifier, x, y, eps=2.0, verbose=False)
    with pytest.raises(ValueError, match="outside clip_values"):
        evaluate_pgd(tiny_classifier, x + 1.0, y, verbose=False)
    x_nan = x.copy()
    x_nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_pgd(tiny_classifier, x_nan, y, verbose=False)
    with pytest.raises(ValueError, match="non-empty"):
        evaluate_pgd(tiny_classifier, x[:0], y[:0], verbose=False)


def test_format_table():
    table = format_table([{"a": 1, "bb": "x"}, {"a": 22, "bb": "yyy"}])
    lines = table.splitlines()
    assert lines[0].split() == ["a", "bb"] and lines[3].split() == ["22", "yyy"]


def test_cli_evaluate_shipped_model(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--n", "20", "--max-iter", "3", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "clean acc" in printed and "robust acc" in printed
    report = json.loads((out / "report.json").read_text())
    result = report["results"][0]
    assert result["n"] == 20 and result["eps"] == 0.1
    assert result["robust_accuracy"] <= result["clean_accuracy"]
    assert report["versions"]["art"].startswith("1.")


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
