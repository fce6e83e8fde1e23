# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Honest robustness evaluation through ART's attacks: the attack suite with EOT, BPDA and a black-box attack,
per-example worst case, majority vote, sanity checks, JSON and PNG reports."""

from art_purify.evaluation.attacks import (
    ATTACKS,
    AttackSettings,
    build_attack,
    parse_attacks,
    straight_through_classifier,
)
from art_purify.evaluation.defences import DEFENCES, build_defence
from art_purify.evaluation.reconstruction_aware_pgd import ReconstructionAwarePGD
from art_purify.evaluation.resubmission_pgd import ResubmissionPGD
from art_purify.evaluation.report import format_table, load_report, save_figure, save_report, summary_table
from art_purify.evaluation.results import AttackOutcome, EvaluationReport, SanityCheck
from art_purify.evaluation.sharding import EvaluationShard, merge_shards
from art_purify.evaluation.suite import PRESETS, evaluate, evaluate_distributed, evaluate_shard
from art_purify.evaluation.voting import majority_vote
from art_purify.models.wrapping import as_art_classifier  # re-exported: the usual entry point of an evaluation

__all__ = [
    "ATTACKS",
    "AttackOutcome",
    "AttackSettings",
    "DEFENCES",
    "EvaluationReport",
    "EvaluationShard",
    "PRESETS",
    "ReconstructionAwarePGD",
    "ResubmissionPGD",
    "SanityCheck",
    "as_art_classifier",
    "build_attack",
    "build_defence",
    "evaluate",
    "evaluate_distributed",
    "evaluate_shard",
    "format_table",
    "load_report",
    "majority_vote",
    "merge_shards",
    "parse_attacks",
    "save_figure",
    "save_report",
    "straight_through_classifier",
    "summary_table",
]
