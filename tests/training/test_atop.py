# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""``art-purify train-atop``: both phases, an interrupted run resumed to the same weights, the artefacts, the zoo
export and loader, and the errors."""

import json

import pytest
import torch

from art_purify.cli import main
from art_purify.zoo import export_run, load_atop_weights, load_safetensors

TINY = ["--n-train", "64", "--quiet", "--num-threads", "1", "--width", "4", "--batch-size", "32"]
SHORT = ["--pretrain-epochs", "1", "--epochs", "2", "--ce-start-epoch", "1", "--finetune-examples", "64"]


def _weights(path):
    return load_safetensors(path)


def test_train_atop_interrupted_and_resumed_ends_with_the_uninterrupted_weights(idx_dir, tmp_path, capsys):
    full, stopped = str(tmp_path / "full"), str(tmp_path / "stopped")
    assert main(["train-atop", "--data", str(idx_dir), "--out", full, *TINY, *SHORT]) == 0
    assert "clean accuracy through the purifier" in capsys.readouterr().out
    assert main(["train-atop", "--data", str(idx_dir), "--out", stopped, *TINY, *SHORT, "--stop-after", "2"]) == 0
    assert "continue with --resume" in capsys.readouterr().out
    assert not (tmp_path / "stopped" / "generator.safetensors").exists()
    assert main(["train-atop", "--data", str(idx_dir), "--out", stopped, *TINY, *SHORT, "--resume"]) == 0
    for name in ("generator.safetensors", "generator_pretrained.safetensors"):
        a, b = _weights(tmp_path / "full" / name), _weights(tmp_path / "stopped" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    pretrained, tuned = _weights(tmp_path / "full" / "generator_pretrained.safetensors"), _weights(
        tmp_path / "full" / "generator.safetensors"
    )
    assert any(not torch.equal(pretrained[k], tuned[k]) for k in tuned)  # the fine-tuning changed it
    card = json.loads((tmp_path / "full" / "model_card.json").read_text())
    assert [r["phase"] for r in card["history"]] == ["pretrain", "finetune", "finetune"]
    assert [r["ce_on"] for r in card["history"]] == [False, False, True]
    assert 0.0 <= card["metrics"]["test_accuracy_purified"] <= 1.0
    stopped_card = json.loads((tmp_path / "stopped" / "model_card.json").read_text())
    assert "--resume" not in stopped_card["command"] and "--resume" in stopped_card["commands"]["finetune"][-1]
    assert set(stopped_card["wall_time_s"]) == {"pretrain", "finetune"}

    dest = tmp_path / "zoo"
    export_run(tmp_path / "full", "toy-atop", dest)
    meta = json.loads((dest / "toy-atop.json").read_text())
    assert meta["kind"] == "atop" and (dest / "toy-atop-pretrained.safetensors").is_file()
    generator = load_atop_weights(dest / "toy-atop.safetensors", meta["config"])
    assert not generator.training and generator.config["width"] == 4


@pytest.mark.parametrize(
    "extra,text",
    [
        (["--mask-fraction", "1.5"], "--mask-fraction must lie in (0, 1)"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--resume"], "no checkpoint"),
    ],
)
def test_train_atop_errors_are_one_line(extra, text, idx_dir, tmp_path, capsys):
    assert main(["train-atop", "--data", str(idx_dir), "--out", str(tmp_path / "o"), *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
