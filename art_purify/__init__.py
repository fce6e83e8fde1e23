# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""art_purify: purification and sharpness-aware training defences for IBM's Adversarial Robustness Toolbox."""

__version__ = "0.1.0"
