"""Robustness evaluation through ART's attacks (first version: l_inf PGD)."""
from art_purify.evaluation.art_wrap import as_art_classifier
from art_purify.evaluation.pgd import EvaluationResult, evaluate_cli, evaluate_pgd, format_table

__all__ = ["EvaluationResult", "as_art_classifier", "evaluate_cli", "evaluate_pgd", "format_table"]
