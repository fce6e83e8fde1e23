# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""``python -m art_purify ...`` (and ``torchrun -m art_purify ...``): the ``art-purify`` command line."""

import sys

from art_purify.cli import main

if __name__ == "__main__":
    sys.exit(main())
