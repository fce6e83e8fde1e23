# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The command line as a user meets it: one clear line per error (never a traceback), resume that refuses changed
settings, Ctrl-C that says where the checkpoint is and how to go on, ``python -m art_purify``."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from art_purify import __version__
from art_purify.cli import main

TINY = ["--n-train", "64", "--quiet", "--num-threads", "1"]


def _run(*args, timeout=300, **kwargs):
    """``python -m art_purify ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "art_purify", *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def _one_line_error(result, text):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0], result.stderr


def test_python_dash_m_help_and_version():
    result = _run("--help", timeout=120)
    assert result.returncode == 0 and "train-diffusion" in result.stdout
    result = _run("--version", timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == f"art-purify {__version__}"


DIFFUSION = ["train-diffusion", "--steps", "4", "--batch-size", "8", "--checkpoint-every", "2", "--lr", "1e-3"]
CLASSIFIER = ["train-classifier", "--epochs", "1", "--batch-size", "16", "--checkpoint-every", "2"]
LONG_TAILED = ["train-long-tailed", "--epochs", "2", "--batch-size", "8", "--imbalance", "2", "--optimizer", "sgd"]


@pytest.mark.parametrize(
    "base, stop, changes",
    [
        (DIFFUSION, 2, {"--seed": "1", "--batch-size": "4", "--lr": "2e-3", "--n-train": "48", "--steps": "1"}),
        (CLASSIFIER, 2, {"--seed": "1", "--batch-size": "8", "--lr": "0.05", "--n-train": "48", "--epochs": "2"}),
        (LONG_TAILED, 1, {"--seed": "1", "--batch-size": "4", "--lr": "0.05", "--n-train": "48", "--epochs": "3"}),
    ],
    ids=["train-diffusion", "train-classifier", "train-long-tailed"],
)
def test_resume_refuses_changed_settings_and_the_card_keeps_every_command(
    base, stop, changes, idx_dir, tmp_path, capsys
):
    """``--steps 1`` for the diffusion run is below the step (2) its checkpoint has reached."""
    out = str(tmp_path / "run")
    first = [*base, "--data", str(idx_dir), "--out", out, *TINY]
    assert main(first + ["--stop-after", str(stop)]) == 0
    capsys.readouterr()

    def with_option(args, flag, value):
        args = list(args)
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
        return args

    for flag, value in changes.items():
        assert main(with_option(first, flag, value) + ["--resume"]) == 2
        err = capsys.readouterr().err
        assert "other settings than the checkpoint's" in err and f"{flag}=" in err, (flag, err)
    assert main(first + ["--resume"]) == 0  # the original settings go on
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["command"].endswith(f"--stop-after {stop}") and len(card["resumed"]) == 1
    assert card["resumed"][0].endswith("--resume")


def test_resume_refuses_another_commands_checkpoint(idx_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main([*CLASSIFIER, "--data", str(idx_dir), "--out", out, *TINY, "--stop-after", "1"]) == 0
    capsys.readouterr()
    assert main([*DIFFUSION, "--data", str(idx_dir), "--out", out, *TINY, "--resume"]) == 2
    assert "written by train-classifier, not train-diffusion" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, text",
    [
        (["train-diffusion", "--lr", "1e9", "--steps", "3", "--batch-size", "8"], "training loss became"),
        (["train-long-tailed", "--rho-tail", "-1"], "--rho-tail must be a non-negative number"),
        (["train-diffusion", "--n-train", "0"], "--n-train must be a positive integer"),
        (["train-classifier", "--batch-size", "0"], "--batch-size must be a positive integer"),
        (["train-diffusion", "--resume"], "no checkpoint at"),
    ],
)
def test_training_errors_are_one_line(args, text, idx_dir, tmp_path):
    argv = [*args, "--data", str(idx_dir), "--out", str(tmp_path / "o")]
    if "--n-train" not in args:
        argv += ["--n-train", "64"]
    _one_line_error(_run(*argv, "--quiet"), text)


def test_an_out_that_is_a_file_and_evaluate_errors_are_one_line(idx_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _one_line_error(_run("train-diffusion", "--data", str(idx_dir), "--out", str(blocker), "--quiet"), "is a file")
    _one_line_error(
        _run("evaluate", "--eps-curve", "-1,0", "--n", "4", "--out", str(tmp_path / "e")),
        "--eps-curve must hold positive multiples of eps",
    )
    _one_line_error(
        _run("evaluate", "--square-queries", "0", "--n", "4", "--out", str(tmp_path / "e")),
        "--square-queries must be a positive integer",
    )


def test_ctrl_c_during_train_diffusion_says_how_to_resume_and_resume_finishes(idx_dir, tmp_path):
    out = tmp_path / "run"
    argv = [
        "train-diffusion",
        "--data",
        str(idx_dir),
        "--out",
        str(out),
        "--steps",
        "40",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "2",
        *TINY,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "art_purify", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a job started in the background inherits an ignored SIGINT, and Python then leaves it ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 240
    while not (out / "checkpoint.pt").is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and f"the last checkpoint is {out / 'checkpoint.pt'}" in err
    resume_line = err.strip().splitlines()[-1].strip()
    assert resume_line.startswith("art-purify train-diffusion") and resume_line.endswith("--resume")
    finished = _run(*resume_line.split()[1:])
    assert finished.returncode == 0, finished.stderr
    card = json.loads((out / "model_card.json").read_text())
    assert card["resumed"] == [resume_line]


def test_no_figure_removes_the_stale_figure_of_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["evaluate", "--n", "4", "--max-iter", "1", "--no-sanity", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert (out / "report.png").is_file()
    assert main(args + ["--no-figure"]) == 0
    assert not (out / "report.png").exists()
    assert "removed" in capsys.readouterr().out
