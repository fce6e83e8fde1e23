# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Checkpoints: the previous one kept beside the newest, and a resume that falls back to it when the newest is
damaged (exactly, with a warning), or fails clearly when nothing usable is left."""

import warnings

import pytest
import torch

from art_purify.engine import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_out_dir,
    load_checkpoint,
    load_latest_checkpoint,
    previous_checkpoint,
    run_loop,
    save_checkpoint,
)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_new_checkpoint_keeps_the_one_it_replaces(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    previous = previous_checkpoint(path)
    assert previous.name == "checkpoint.prev.pt"
    save_checkpoint({"step": 1}, path)
    assert load_checkpoint(path)["step"] == 1 and not previous.exists()
    save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 2 and load_checkpoint(previous)["step"] == 1
    save_checkpoint({"step": 3}, path)
    assert load_checkpoint(path)["step"] == 3 and load_checkpoint(previous)["step"] == 2
    # a damaged newest is not kept: the previous one stays the good one before it
    _truncate(path)
    save_checkpoint({"step": 4}, path)
    assert load_checkpoint(path)["step"] == 4 and load_checkpoint(previous)["step"] == 2
    # a write that fails leaves both files as they were
    with pytest.raises(Exception):
        save_checkpoint({"step": 5, "bad": lambda: None}, path)  # a lambda cannot be pickled
    assert load_checkpoint(path)["step"] == 4 and load_checkpoint(previous)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]
    save_checkpoint({"step": 6}, path, keep_previous=False)
    assert load_checkpoint(previous)["step"] == 2


def test_loading_falls_back_to_the_previous_checkpoint_with_a_warning(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint({"step": 1}, path)
    save_checkpoint({"step": 2}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning while the newest is good
        assert load_latest_checkpoint(path) == ({"step": 2}, path)
    _truncate(path)
    with pytest.warns(RuntimeWarning, match=rf"{path} cannot be read.*using the previous checkpoint"):
        state, source = load_latest_checkpoint(path)
    assert state == {"step": 1} and source == previous_checkpoint(path)
    path.unlink()  # a crash between the two renames of a write leaves only the previous one
    with pytest.warns(RuntimeWarning, match=rf"{path} does not exist"):
        assert load_latest_checkpoint(path)[0] == {"step": 1}


def test_no_usable_checkpoint_is_a_clear_error_naming_the_files(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    with pytest.raises(FileNotFoundError, match="there is no checkpoint"):
        load_latest_checkpoint(path)
    save_checkpoint({"step": 1}, path)
    save_checkpoint({"step": 2}, path)
    _truncate(path)
    _truncate(previous_checkpoint(path), keep=0.0)
    with pytest.raises(CheckpointError, match="no usable checkpoint") as info:
        load_latest_checkpoint(path)
    assert str(path) in str(info.value) and str(previous_checkpoint(path)) in str(info.value)
    assert isinstance(info.value, ValueError)  # the command line prints it as one line


def test_check_out_dir_counts_the_previous_checkpoint(tmp_path):
    check_out_dir(tmp_path, resume=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        check_out_dir(tmp_path, resume=True)
    save_checkpoint({"step": 1}, previous_checkpoint(tmp_path / CHECKPOINT_NAME))  # only the previous one is left
    check_out_dir(tmp_path, resume=True)
    with pytest.raises(FileExistsError, match="checkpoint.prev.pt already exists"):
        check_out_dir(tmp_path, resume=False)


def _run(path, resume=False, stop_after=None):
    """Six steps of least squares with SGD, a checkpoint every two steps; returns the weights."""
    x = torch.linspace(-1, 1, 24, dtype=torch.float64).view(12, 2)
    y = x @ torch.tensor([[1.5], [-0.5]], dtype=torch.float64)
    w = torch.zeros(2, 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.3, momentum=0.9)

    def train_step(step, idx, generator):
        opt.zero_grad()
        noise = 0.01 * torch.randn(len(idx), 1, generator=generator, dtype=torch.float64)
        loss = ((x[idx] @ w - y[idx] - noise) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss.detach())

    def get_state():
        return {"model": {"w": w.detach().clone()}, "optimizer": opt.state_dict()}

    def set_state(state):
        with torch.no_grad():
            w.copy_(state["model"]["w"])
        opt.load_state_dict(state["optimizer"])

    summary = run_loop(
        total_steps=6, n_train=12, batch_size=4, seed=0, checkpoint_path=path, resume=resume, checkpoint_every=2,
        train_step=train_step, get_state=get_state, set_state=set_state, stop_after=stop_after, verbose=False,
        kind="test", config={"lr": 0.3},
    )  # fmt: skip
    return w.detach().clone(), summary


def test_a_resume_whose_newest_checkpoint_is_truncated_continues_exactly_from_the_previous_one(tmp_path):
    full, _ = _run(tmp_path / "full" / CHECKPOINT_NAME)
    path = tmp_path / "cut" / CHECKPOINT_NAME
    _run(path, stop_after=4)  # checkpoints at steps 2 and 4
    assert load_checkpoint(path)["step"] == 4 and load_checkpoint(previous_checkpoint(path))["step"] == 2
    _truncate(path)
    with pytest.warns(RuntimeWarning, match=rf"{path} cannot be read.*step 2"):
        resumed, summary = _run(path, resume=True)
    assert summary["steps_done"] == 6 and torch.equal(resumed, full)  # steps 2-4 redone exactly
    assert load_checkpoint(path)["step"] == 6 and load_checkpoint(previous_checkpoint(path))["step"] == 4
    # both damaged: a clear error naming both files, and nothing changes
    _truncate(path)
    _truncate(previous_checkpoint(path))
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    with pytest.raises(CheckpointError, match="checkpoint.pt cannot be read.*checkpoint.prev.pt cannot be read"):
        _run(path, resume=True)
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before
