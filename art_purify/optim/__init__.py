# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Torch optimisers: SAM, ImbSAM and SSE-SAM around any base optimiser. Importing this package stays light."""

from art_purify.optim.sam import SAM, SSESAM, ImbSAM, make_closure

__all__ = ["SAM", "ImbSAM", "SSESAM", "make_closure"]
