"""Robustness evaluation through ART's attacks: defences by name, PGD / PGD-EOT, majority voting, reports."""
from art_purify.evaluation.art_wrap import as_art_classifier
from art_purify.evaluation.defences import DEFENCES, build_defence
from art_purify.evaluation.pgd import EvaluationResult, evaluate_cli, evaluate_pgd, format_table
from art_purify.evaluation.voting import majority_vote

__all__ = [
    "DEFENCES",
    "EvaluationResult",
    "as_art_classifier",
    "build_defence",
    "evaluate_cli",
    "evaluate_pgd",
    "format_table",
    "majority_vote",
]
