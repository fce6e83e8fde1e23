# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Defences in ART's layout: ``preprocessor`` (``PreprocessorPyTorch`` classes) and ``trainer`` (``Trainer``
classes)."""
