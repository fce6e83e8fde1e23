# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
