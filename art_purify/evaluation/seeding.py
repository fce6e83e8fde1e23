# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
Seeds of the evaluation phases, keyed by name.

Every phase of an evaluation (the clean votes, each attack, each vote on adversarial examples, each sanity run) has
a name such as ``"attack/pgd"`` or ``"vote/pgd"``, and its seed is a function of ``(seed, name)`` alone. A phase
therefore draws the same numbers whatever ran before it: a resumed evaluation, a cascade that skips an attack, or a
run with another attack list gives every common phase the same seed.

Within a phase, art_purify defences get the phase seed through ``set_params(seed=...)`` (their previous parameters
are restored afterwards), and ART's attacks, which draw from numpy's global generator, run with numpy's global
state seeded for the phase and restored afterwards; torch's global generator is forked. The caller's random state
is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
import torch

from art_purify.evaluation.attacks import defences_of


def phase_seed(seed: int, key: str) -> int:
    """
    The seed of phase ``key`` of an evaluation with ``seed``: 32 bits from numpy's ``SeedSequence`` fed the seed and
    a SHA-256 digest of the key (stable across processes and Python versions, unlike ``hash``).
    """
    words = np.frombuffer(hashlib.sha256(key.encode("utf-8")).digest()[:16], dtype="<u4")
    return int(np.random.SeedSequence([int(seed), *(int(w) for w in words)]).generate_state(1)[0])


@contextlib.contextmanager
def defence_params(classifier: Any, **params: Any) -> Iterator[None]:
    """
    Temporarily set ``params`` on every defence of ``classifier`` that declares them in its ``params``. A defence
    with ``stochastic = False`` (the reconstruction search, whose ``seed`` fixes its noise draws once and so is part
    of its definition) keeps its ``seed``.
    """
    saved: List[Tuple[Any, dict]] = []
    try:
        for defence in defences_of(classifier):
            keep = () if getattr(defence, "stochastic", True) else ("seed",)
            supported = {k: v for k, v in params.items() if k in getattr(defence, "params", []) and k not in keep}
            if supported:
                saved.append((defence, {k: getattr(defence, k) for k in supported}))
                defence.set_params(**supported)
        yield
    finally:
        for defence, old in saved:
            defence.set_params(**old)


@contextlib.contextmanager
def seeded_phase(classifier: Any, seed: int, key: str, nb_eot: Optional[int] = None) -> Iterator[None]:
    """Run phase ``key`` with seeds derived from ``(seed, key)``; the global numpy and torch states are restored."""
    value = phase_seed(seed, key)
    state = np.random.get_state()
    params: dict = {"seed": value}
    if nb_eot is not None:
        params["nb_eot"] = int(nb_eot)
    try:
        np.random.seed(value)
        cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=cuda), defence_params(classifier, **params):
            torch.manual_seed(value)
            yield
    finally:
        np.random.set_state(state)


#: The phase whose seed fixes the noise of the DW-box attacks and of their fixed-noise predictions: one seed for the
#: whole evaluation, so that an example's fixed noise depends on its index alone (not on its batch or rank).
DW_BOX_PHASE = "dw-box"


def fixed_noise_defences(classifier: Any) -> Tuple[List[Any], List[Any]]:
    """``(fixed, unsupported)``: the defences of ``classifier`` with a fixed-noise mode (a ``noise`` parameter), and
    those without one that may be random (not declared ``stochastic = False``)."""
    fixed, unsupported = [], []
    for defence in defences_of(classifier):
        if "noise" in getattr(defence, "params", []) and callable(getattr(defence, "set_noise_keys", None)):
            fixed.append(defence)
        elif getattr(defence, "stochastic", True):
            unsupported.append(defence)
    return fixed, unsupported


@contextlib.contextmanager
def fixed_noise(classifier: Any, seed: int, x_clean: np.ndarray, keys: np.ndarray, radius: float) -> Iterator[None]:
    """
    Run a block with every random defence of ``classifier`` in its fixed-noise mode: ``noise="fixed"``,
    ``nb_eot=1``, the seed of phase :data:`DW_BOX_PHASE`, and the examples ``x_clean`` registered with their
    ``keys`` (their indices in the evaluation) within ``radius`` (the attack's eps). Everything is put back after.
    """
    value = phase_seed(seed, DW_BOX_PHASE)
    defences = fixed_noise_defences(classifier)[0]
    saved = [(d, d._noise_anchors, d._noise_keys, d._noise_radius) for d in defences]  # pylint: disable=W0212
    try:
        with defence_params(classifier, noise="fixed", nb_eot=1, seed=value):
            for defence in defences:
                defence.set_noise_keys(x_clean, radius=radius, keys=keys)
            yield
    finally:
        for defence, anchors, known, old_radius in saved:
            defence._noise_anchors, defence._noise_keys, defence._noise_radius = anchors, known, old_radius
