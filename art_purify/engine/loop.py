# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The one training loop of the package: the classifier, diffusion and long-tailed trainers (and the
sharpness-aware ART trainer under the latter) all run through :func:`run_loop`.

Every random draw of step ``s`` comes from ``step_generator(seed, s)`` and the data order of epoch ``e`` from
``step_generator(seed, -1 - e)``, so a run resumed from a checkpoint at step ``s`` takes exactly the steps an
uninterrupted run takes: the checkpoint only needs the trainer's state and ``s``.

Checkpoint names, the same for every trainer: the file ``checkpoint.pt`` (:data:`CHECKPOINT_NAME`) holds ``step``,
``wall_time_s`` and ``recent_losses`` written by the loop, and the trainer's own entries under the names of
:data:`STATE_KEYS` (``model``, ``optimizer``, and where they exist ``ema``, ``scheduler``, ``history``). The
checkpoint before it is kept as ``checkpoint.prev.pt``; a resume whose newest checkpoint cannot be read continues
from that one, with a warning (:func:`~art_purify.engine.checkpoint.load_latest_checkpoint`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from tqdm.auto import tqdm

from art_purify.engine.checkpoint import has_checkpoint, load_latest_checkpoint, previous_checkpoint, save_checkpoint
from art_purify.utils import step_generator

logger = logging.getLogger(__name__)

#: The checkpoint file of every trainer, inside its output directory.
CHECKPOINT_NAME = "checkpoint.pt"
#: Settings added to the trainers' configs after their checkpoints existed, with the value a checkpoint without them
#: was made with (``hflip`` and ``crop_pad``: the flips and crop of the classifier and diffusion trainers).
ADDED_SETTINGS: Dict[str, Any] = {"hflip": True, "crop_pad": 2}
#: The names a trainer may use for its entries of a checkpoint.
STATE_KEYS = ("model", "optimizer", "ema", "scheduler", "history")


def batch_indices(n: int, batch_size: int, seed: int, start_step: int) -> Iterator[Tuple[int, torch.Tensor]]:
    """Yield ``(step, indices)`` from ``start_step`` on; each epoch is a seeded permutation, the last batch dropped."""
    steps_per_epoch = n // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} training examples.")
    step = start_step
    while True:
        epoch, offset = divmod(step, steps_per_epoch)
        order = torch.randperm(n, generator=step_generator(seed, -1 - epoch))
        for k in range(offset, steps_per_epoch):
            yield step, order[k * batch_size : (k + 1) * batch_size]
            step += 1


def cosine_lr(step: int, total: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to zero at ``total``."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Fail early: ``resume`` needs a checkpoint in ``out_dir`` (the newest or the previous one); a fresh run must not
    overwrite either."""
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME
    if resume and not has_checkpoint(ckpt_path):
        raise FileNotFoundError(f"resume was asked for but there is no checkpoint at {ckpt_path} (it does not exist).")
    if not resume:
        for existing in (ckpt_path, previous_checkpoint(ckpt_path)):
            if existing.exists():
                raise FileExistsError(
                    f"{existing} already exists: pass --resume to continue that run or use another --out."
                )


def run_loop(  # pylint: disable=too-many-arguments,too-many-locals
    *,
    total_steps: int,
    n_train: int,
    batch_size: int,
    seed: int,
    checkpoint_path: Optional[Path],
    resume: bool,
    checkpoint_every: int,
    train_step: Callable[[int, torch.Tensor, torch.Generator], float],
    get_state: Callable[[], Dict],
    set_state: Callable[[Dict], None],
    after_step: Optional[Callable[[int], None]] = None,
    stop_after: Optional[int] = None,
    verbose: bool = True,
    desc: str = "train",
    kind: Optional[str] = None,
    config: Optional[Dict[str, Any]] = None,
    command: Optional[str] = None,
) -> Dict[str, Any]:
    """
    Run ``train_step(step, indices, generator)`` for ``total_steps`` steps with periodic atomic checkpoints.

    :param checkpoint_path: Where the checkpoint lives (``None``: no checkpoints, no resume); the one before it is
                            kept beside it, and a resume falls back to it when the newest cannot be read.
    :param checkpoint_every: Steps between checkpoints (one is also written when the loop stops).
    :param get_state: The trainer's entries of a checkpoint (names from :data:`STATE_KEYS`).
    :param set_state: Restore them from a loaded checkpoint.
    :param after_step: Called with the number of steps done after every step, before the checkpoint (epoch-end
                       bookkeeping of epoch-based trainers goes here, so that the checkpoint includes it).
    :param stop_after: Stop (after checkpointing) once this many steps are done, as an interruption would.
    :param kind: What writes the checkpoint (``"train-diffusion"``, ...); a resume by something else is refused.
    :param config: Every setting that decides the run (JSON values); a resume with other values is refused, naming
                   each setting that differs.
    :param command: The command line of this session, kept with those of the earlier sessions.
    :return: ``{"steps_done", "wall_time_s", "last_loss", "mean_loss_last_100", "commands"}``; ``wall_time_s``
             sums the time of every session of the run, resumed ones included; ``commands`` lists the command of
             the first session and of every resume.
    :raises FloatingPointError: When a step's loss is not finite.
    :raises ValueError: When resuming another kind of run or with other settings.
    :raises FileNotFoundError: When resuming without a checkpoint.
    :raises CheckpointError: When resuming and no checkpoint can be read (naming each file).
    """
    start, elapsed, recent = 0, 0.0, []
    config = _normalised(config)
    commands: List[Optional[str]] = [command]
    if resume:
        if checkpoint_path is None or not has_checkpoint(checkpoint_path):
            raise FileNotFoundError(f"resume was asked for but there is no checkpoint at {checkpoint_path}.")
        state, source = load_latest_checkpoint(checkpoint_path)
        check_resumable(state, source, kind, config)
        set_state(state)
        commands = list(state.get("commands", [None])) + [command]
        start, elapsed = int(state["step"]), float(state.get("wall_time_s", 0.0))
        recent = list(state.get("recent_losses", []))
        logger.info("Resumed from %s at step %d", source, start)
    end = total_steps if stop_after is None else min(total_steps, stop_after)
    t0 = time.time()

    def checkpoint(step: int) -> None:
        if checkpoint_path is None:
            return
        state = get_state()
        state.update(
            step=step,
            wall_time_s=elapsed + time.time() - t0,
            recent_losses=recent[-100:],
            kind=kind,
            config=config,
            commands=commands,
        )
        save_checkpoint(state, checkpoint_path)

    progress = tqdm(total=total_steps, initial=start, desc=desc, disable=not verbose, dynamic_ncols=True)
    done = start
    if start < end:
        for step, idx in batch_indices(n_train, batch_size, seed, start):
            loss = train_step(step, idx, step_generator(seed, step))
            if not math.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at step {step}; lower the learning rate.")
            recent.append(loss)
            recent = recent[-100:]
            progress.update(1)
            progress.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
            done = step + 1
            if after_step is not None:
                after_step(done)
            if done % checkpoint_every == 0 or done == end:
                checkpoint(done)
            if done >= end:
                break
    progress.close()
    return {
        "steps_done": done,
        "wall_time_s": elapsed + time.time() - t0,
        "last_loss": recent[-1] if recent else float("nan"),
        "mean_loss_last_100": sum(recent) / len(recent) if recent else float("nan"),
        "commands": commands,
    }


def _normalised(config: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """JSON values (tuples become lists, paths strings), so that a loaded checkpoint compares equal."""
    return None if config is None else json.loads(json.dumps(config, sort_keys=True, default=str))


def check_resumable(
    state: Dict[str, Any], path: Optional[Path], kind: Optional[str], config: Optional[Dict[str, Any]]
) -> None:
    """
    Refuse to resume a checkpoint of another kind of run, or with settings other than those it was made with.

    :raises ValueError: Naming the program that wrote the checkpoint, or every setting that differs with both
                        values.
    """
    if kind is not None and state.get("kind") != kind:
        writer = state.get("kind") or "another program (or an older art-purify)"
        raise ValueError(
            f"{path} was written by {writer}, not {kind}: resume it with that command, or start afresh "
            "in another --out."
        )
    saved = state.get("config")
    if config is None or saved is None:
        return
    # settings added after checkpoints existed: one without them was made with their earlier fixed behaviour
    saved = {**{k: v for k, v in ADDED_SETTINGS.items() if k in config}, **saved}
    differing = [
        f"{key}={config.get(key)!r} (the checkpoint has {saved.get(key)!r})"
        for key in sorted(set(config) | set(saved))
        if config.get(key) != saved.get(key)
    ]
    if differing:
        raise ValueError(
            f"--resume with other settings than the checkpoint's ({path}): {', '.join(differing)}. "
            "Resume with the original settings, or start a new run in another --out."
        )
