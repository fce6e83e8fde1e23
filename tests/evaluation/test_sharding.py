# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Evaluation split across ranks: per-batch seeds, shards and their merge, two gloo ranks, a killed rank and
``resume``, and ``torchrun -m art_purify evaluate`` against a single process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from art_purify.evaluation import (
    AttackSettings,
    EvaluationShard,
    as_art_classifier,
    build_defence,
    evaluate,
    evaluate_distributed,
    evaluate_shard,
    merge_shards,
)
from art_purify.evaluation.sharding import batch_key, batch_slices, check_shard, owned_batches
from tests import helpers

ATTACKS = "pgd,bpda"
KWARGS = dict(eot=2, votes=3, seed=5, sanity_n=4, eps_curve=(), verbose=False)


def _problem(n=7):
    """A random defence (the uniform purifier on the tiny UNet) in front of the tiny classifier, and ``n`` images
    in 4 uneven batches of 2."""
    model = helpers.tiny_classifier()
    defence = build_defence("uniform", helpers.tiny_unet(), None, model, gradient="exact", seed=0, defence_grid=50)
    classifier = as_art_classifier(
        model, input_shape=(1, 8, 8), nb_classes=10, device="cpu", preprocessing_defences=[defence]
    )
    x = helpers.image_batch(n, dtype=torch.float32, seed=3).numpy()
    y = np.arange(n) % 10
    return classifier, x, y, AttackSettings(eps=0.1, max_iter=2, batch_size=2)


def _outcomes(report):
    """What must agree example by example: the per-example JSON and the adversarial examples."""
    return report.to_json()["per_example"], {k: v.tolist() for k, v in report.x_adv.items()}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The ranks run one thread each; so does this process, for the same floating-point reductions."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def single():
    classifier, x, y, settings = _problem()
    return evaluate(classifier, x, y, ATTACKS, settings, **KWARGS)


def test_batches_and_their_keys():
    assert batch_slices(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert batch_slices(7, 3, "phase") == [slice(0, 7)]
    assert batch_key("attack/pgd", 0) == "attack/pgd" and batch_key("attack/pgd", 2) == "attack/pgd@batch2"
    assert owned_batches(5, (1, 2)) == [1, 3] and owned_batches(5, (0, 1)) == [0, 1, 2, 3, 4]
    for bad in ((2, 2), (-1, 2), (0, 0), "ab", (0,)):
        with pytest.raises(ValueError, match="shard must be"):
            check_shard(bad)
    with pytest.raises(ValueError, match="seeding must be one of"):
        batch_slices(7, 3, "example")


def test_a_single_batch_draws_what_the_whole_run_seeding_drew():
    classifier, x, y, settings = _problem(4)
    settings = AttackSettings(eps=0.1, max_iter=2, batch_size=4)
    per_batch = evaluate(classifier, x, y, ATTACKS, settings, **KWARGS)
    per_phase = evaluate(classifier, x, y, ATTACKS, settings, seeding="phase", **KWARGS)
    assert _outcomes(per_batch) == _outcomes(per_phase)
    assert per_batch.settings["seeding"] == "batch" and per_phase.settings["seeding"] == "phase"


def test_shards_merge_into_the_single_process_report(single, tmp_path):
    classifier, x, y, settings = _problem()
    shards = [evaluate_shard(classifier, x, y, (r, 3), ATTACKS, settings, **_shard_kwargs()) for r in range(3)]
    assert [sorted(s.batches) for s in shards] == [[0, 3], [1], [2]]
    shards[1].save(str(tmp_path / "s1.npz"))  # a launcher without a process group passes files around
    shards[1] = EvaluationShard.load(str(tmp_path / "s1.npz"))
    merged = evaluate(classifier, x, y, ATTACKS, settings, shards=shards[::-1], **KWARGS)
    assert _outcomes(merged) == _outcomes(single)
    assert [c.passed for c in merged.checks] == [c.passed for c in single.checks]
    with pytest.raises(ValueError, match="miss batch 1"):
        evaluate(classifier, x, y, ATTACKS, settings, shards=[shards[0], shards[2]], **KWARGS)
    with pytest.raises(ValueError, match="do not apply"):
        evaluate(classifier, x, y, ATTACKS, settings, shards=shards, checkpoint_dir=tmp_path, **KWARGS)
    with pytest.raises(ValueError, match="a list of EvaluationShard"):
        evaluate(classifier, x, y, ATTACKS, settings, shards=shards[0], **KWARGS)
    with pytest.raises(ValueError, match="batch 0 is in two shards"):
        merge_shards([shards[0], shards[0]])
    with pytest.raises(ValueError, match="other data, settings or weights"):
        evaluate(classifier, x, y, ATTACKS, settings, shards=shards, **{**KWARGS, "seed": 6})
    other = evaluate_shard(classifier, x[::-1].copy(), y, (1, 3), ATTACKS, settings, **_shard_kwargs())
    with pytest.raises(ValueError, match="shard 1 comes from an evaluation with other data"):
        merge_shards([shards[0], other])


def test_ranks_sharing_a_checkpoint_are_merged_by_resume(single, tmp_path):
    classifier, x, y, settings = _problem()
    for rank in range(2):
        evaluate_shard(classifier, x, y, (rank, 2), ATTACKS, settings, checkpoint_dir=tmp_path, **_shard_kwargs())
    seen = []
    merged = evaluate(
        classifier,
        x,
        y,
        ATTACKS,
        settings,
        checkpoint_dir=tmp_path,
        resume=True,
        on_batch=lambda i, loaded: seen.append((i, loaded)),
        **KWARGS,
    )
    assert seen == [(i, True) for i in range(4)]  # nothing run again: only the sanity checks
    assert _outcomes(merged) == _outcomes(single)


def _shard_kwargs():
    return {k: v for k, v in KWARGS.items() if k not in ("sanity_n", "eps_curve")}


def _rank_main(rank, world, root, run, fail):  # pylint: disable=too-many-arguments
    """One rank of a gloo run of the problem above; rank 0 saves the report's outcomes in ``root/run.json``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/{run}.init", rank=rank, world_size=world)
    try:
        classifier, x, y, settings = _problem()

        def on_batch(index, loaded):
            with open(f"{root}/{run}-rank{rank}.log", "a", encoding="utf-8") as log:
                log.write(f"{index} {int(loaded)}\n")
            if rank == 1 and fail == "kill":
                os._exit(3)  # the process dies at once: no clean-up, no exception
            if rank == 1 and fail == "raise":
                raise ValueError("injected failure on rank 1")

        report = evaluate_distributed(
            classifier,
            x,
            y,
            ATTACKS,
            settings,
            checkpoint_dir=f"{root}/partial",
            resume=run == "resumed",
            on_batch=on_batch,
            **KWARGS,
        )
        assert (report is None) == (rank != 0)
        if report is not None:
            per_example, x_adv = _outcomes(report)
            with open(f"{root}/{run}.json", "w", encoding="utf-8") as out:
                json.dump({"per_example": per_example, "x_adv": x_adv}, out)
    finally:
        dist.destroy_process_group()


def _log(root, run):
    out = []
    for rank in range(2):
        path = root / f"{run}-rank{rank}.log"
        if path.exists():
            out += [tuple(map(int, line.split())) for line in path.read_text().splitlines()]
    return sorted(out)


def test_two_gloo_ranks_fail_with_a_rank_error_and_a_killed_rank_resumes_to_the_single_process_report(single, tmp_path):
    expected = json.loads(json.dumps(dict(zip(("per_example", "x_adv"), _outcomes(single)))))
    with pytest.raises(Exception, match="injected failure on rank 1"):  # the run fails with the rank's error
        mp.spawn(_rank_main, args=(2, tmp_path, "raised", "raise"), nprocs=2)

    with pytest.raises(mp.ProcessExitedException):  # rank 1 dies after its first batch; the run stops
        mp.spawn(_rank_main, args=(2, tmp_path, "killed", "kill"), nprocs=2)
    assert (1, 0) in _log(tmp_path, "killed")  # rank 1 got batch 1 (rank 0 batches 0 and 2, rank 1 batches 1, 3)
    finished = {
        i
        for i in range(4)
        if all((tmp_path / "partial" / f"b{i:05d}-{p}.npz").exists() for p in ("clean", "pgd", "bpda"))
    }
    assert 1 in finished and 3 not in finished
    mp.spawn(_rank_main, args=(2, tmp_path, "resumed", None), nprocs=2)
    assert json.loads((tmp_path / "resumed.json").read_text()) == expected
    # only the unfinished batches ran again
    assert _log(tmp_path, "resumed") == [(i, int(i in finished)) for i in range(4)]


def _cli(*args, torchrun=False, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"] if torchrun else [sys.executable]
    )
    return subprocess.run(
        [*launcher, "-m", "art_purify", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def test_torchrun_evaluate_equals_a_single_process(tmp_path):
    args = [
        "--defence",
        "atop",
        "--attack",
        "pgd,square",
        "--num-images",
        7,
        "--batch-size",
        2,
        "--max-iter",
        2,
        "--eot",
        2,
        "--votes",
        3,
        "--square-queries",
        10,
        "--device",
        "cpu",
        "--quiet",
        "--no-figure",
        "--no-sanity",  # merged sanity checks: test_shards_merge_into_the_single_process_report (CI time)
    ]
    alone = _cli(*args, "--out", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    split = _cli(*args, "--out", tmp_path / "split", torchrun=True)
    assert split.returncode == 0, split.stderr
    assert "rank 1 of 2: its example batches are done" in split.stdout
    one, two = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("alone", "split"))
    assert one["evaluation"]["per_example"] == two["evaluation"]["per_example"]
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert 0 < one["evaluation"]["clean_accuracy"], "the test needs a defence that gets some images right"
    with np.load(tmp_path / "alone" / "adversarial.npz") as a, np.load(tmp_path / "split" / "adversarial.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    # the same split without torch.distributed: one process per --shard (a SLURM array), then --resume writes it
    for shard in ("1/2", "0/2"):
        part = _cli(*args, "--out", tmp_path / "shards", "--shard", shard)
        assert part.returncode == 0, part.stderr
        assert not (tmp_path / "shards" / "report.json").exists()
    assert "shard 0 of 2: batches [0, 2] of 4 are done" in part.stdout
    merged = _cli(*args, "--out", tmp_path / "shards", "--resume")
    assert merged.returncode == 0, merged.stderr
    three = json.loads((tmp_path / "shards" / "report.json").read_text())
    assert three["evaluation"]["per_example"] == one["evaluation"]["per_example"]


def test_a_split_run_refuses_phase_seeding_and_a_bad_timeout(tmp_path, monkeypatch):
    import contextlib

    import art_purify.evaluation.command as command

    monkeypatch.setattr(command, "process_group", lambda device, timeout: contextlib.nullcontext((0, 2, device)))
    with pytest.raises(ValueError, match="needs --seeding batch"):
        command.run_evaluate(out=tmp_path / "r", n=4, seeding="phase", device="cpu", verbose=False)
    with pytest.raises(ValueError, match="--dist-timeout must be a positive number"):
        command.run_evaluate(out=tmp_path / "r", n=4, dist_timeout=float("nan"), device="cpu", verbose=False)
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_a_shard_refuses_phase_seeding_torchrun_and_a_bad_rank(tmp_path, monkeypatch, capsys):
    import contextlib

    import art_purify.evaluation.command as command
    from art_purify.cli import main

    with pytest.raises(ValueError, match="--shard needs --seeding batch"):
        command.run_evaluate(out=tmp_path / "r", n=4, seeding="phase", shard=(0, 2), device="cpu", verbose=False)
    with pytest.raises(ValueError, match="shard must be"):
        command.run_evaluate(out=tmp_path / "r", n=4, shard=(2, 2), device="cpu", verbose=False)
    monkeypatch.setattr(command, "process_group", lambda device, timeout: contextlib.nullcontext((0, 2, device)))
    with pytest.raises(ValueError, match="--shard is for runs outside torchrun"):
        command.run_evaluate(out=tmp_path / "r", n=4, shard=(0, 2), device="cpu", verbose=False)
    assert not (tmp_path / "r").exists()
    for bad in ("2/2", "1", "a/b", "-1/2"):
        with pytest.raises(SystemExit):
            main(["evaluate", "--shard", bad, "--out", str(tmp_path / "r")])
        assert "--shard must be RANK/WORLD" in capsys.readouterr().err


def test_ctrl_c_message_counts_the_saved_batches(tmp_path):
    import argparse

    from art_purify.cli import _interrupted

    args = argparse.Namespace(command="evaluate", out=tmp_path)
    command = "art-purify evaluate --out X"
    assert "no phase had finished yet" in _interrupted(args, command)
    (tmp_path / "partial").mkdir()
    for name in ("b00000-clean", "b00000-pgd", "b00001-clean"):
        (tmp_path / "partial" / f"{name}.npz").write_bytes(b"")
    message = _interrupted(args, command)
    assert "3 finished phases of 2 example batches" in message and message.endswith(command + " --resume")
