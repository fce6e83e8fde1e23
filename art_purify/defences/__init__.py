"""Defences in ART's layout: ``preprocessor`` (``PreprocessorPyTorch`` classes) and ``trainer`` (``Trainer`` classes)."""
