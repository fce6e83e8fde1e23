# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The training engine every trainer runs on (below ``defences`` and ``training``): the step-indexed loop with exact
resume, and atomic checkpoint and artefact writing (the previous checkpoint kept beside the newest)."""

from art_purify.engine.checkpoint import (
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    load_latest_checkpoint,
    previous_checkpoint,
    save_checkpoint,
    save_weights,
    write_json,
)
from art_purify.engine.loop import CHECKPOINT_NAME, STATE_KEYS, batch_indices, check_out_dir, cosine_lr, run_loop

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "STATE_KEYS",
    "batch_indices",
    "check_out_dir",
    "cosine_lr",
    "has_checkpoint",
    "load_checkpoint",
    "load_latest_checkpoint",
    "previous_checkpoint",
    "run_loop",
    "save_checkpoint",
    "save_weights",
    "write_json",
]
