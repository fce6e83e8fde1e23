# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Randomness of the random ART preprocessors, in one place: the seeded noise stream of a defence and the expansion
rule of expectation over transformation (EOT)."""

from __future__ import annotations

import math
import secrets
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from art_purify.defences.preprocessor.validation import validate_images
from art_purify.utils import KeyedStreams

#: The noise modes of the random defences: fresh draws on every call, or noise fixed per example (DW-box).
NOISE_MODES = ("fresh", "fixed")
#: Values (rows x anchors x pixels) compared at once when looking up noise keys: 32 MiB of float64.
_LOOKUP_BUDGET = 2**22


class SeededStreamMixin:
    """
    The random stream of a stochastic defence: one ``torch.Generator`` per device, seeded from the defence's ``seed``
    (a fresh random seed when it is ``None``), so that with a seed the calls after construction (or after
    :meth:`reset_generator`) replay the same draws, and the global RNG is never touched. A successful ``set_params``
    restarts the stream (with :class:`~art_purify.utils.AtomicParamsMixin`).
    """

    seed: Optional[int] = None
    _generators: Dict[str, torch.Generator]

    def reset_generator(self) -> None:
        """Restart the noise stream: with a ``seed`` the next calls replay the same noise as after construction."""
        self._generators = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        if not hasattr(self, "_generators"):
            self._generators = {}
        key = str(device)
        if key not in self._generators:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(self.seed) if self.seed is not None else secrets.randbits(63))
            self._generators[key] = generator
        return self._generators[key]

    def _after_set_params(self) -> None:
        """A successful ``set_params`` restarts the noise stream (see :meth:`reset_generator`)."""
        self.reset_generator()


class FixedNoiseMixin(SeededStreamMixin):
    """
    The fixed-noise ("deterministic white-box", DW-box) mode of a random defence, next to its fresh draws.

    With ``noise="fixed"`` the defence's randomness for an input is a pure function of ``seed`` and of the input's
    noise KEY: the draws of row ``i`` come from a stream of its own (:class:`~art_purify.utils.KeyedStreams`), so an
    example gets the same noise in every call, alone or in any batch, at any position, on any device. The key is the
    example's index in the evaluation, not its pixels: :meth:`set_noise_keys` registers the clean examples (with
    their keys, default ``0 .. N-1``) and a radius, and an input takes the key of the registered example nearest to
    it in L_inf distance, which must be within the radius (an attack's iterate stays within ``eps`` of its clean
    example, so it keeps that example's noise however the attack moves it). The defence is then a deterministic
    function the attacker knows completely; its gradient is the exact gradient of that function (the key lookup is
    piecewise constant). EOT averages nothing there, so ``noise="fixed"`` requires ``nb_eot=1``, and it needs an
    integer ``seed`` (the noise must be known to be fixed).

    Subclasses declare ``noise``, ``seed``, ``nb_eot``, ``clip_values`` and ``channels_first`` and call
    :meth:`_check_noise` from ``_check_params`` and :meth:`_noise_source` in ``forward``.
    """

    noise: str = "fresh"
    nb_eot: int = 1
    clip_values: Any = (0.0, 1.0)
    channels_first: bool = True
    _noise_anchors: Optional[torch.Tensor] = None
    _noise_keys: Optional[np.ndarray] = None
    _noise_radius: float = 0.0

    def _check_noise(self) -> None:
        if not isinstance(self.noise, str) or self.noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {self.noise!r}.")
        if self.noise == "fixed":
            if self.seed is None:
                raise ValueError("noise='fixed' needs an integer seed (the noise of every example is fixed by it).")
            if self.nb_eot != 1:
                raise ValueError(
                    f"noise='fixed' makes the defence deterministic: EOT averages nothing, so nb_eot must be 1 "
                    f"(got {self.nb_eot})."
                )

    def set_noise_keys(
        self, x: Union[np.ndarray, torch.Tensor], radius: float, keys: Optional[Union[np.ndarray, list]] = None
    ) -> None:
        """
        Register the examples whose noise ``noise="fixed"`` fixes: an input within ``radius`` (L_inf, input units)
        of ``x[j]`` gets the noise of key ``keys[j]`` (default ``j``). An input within the radius of examples with
        different keys is refused when it is purified (its noise would depend on its pixels): the radius must stay
        below half the L_inf distance between such examples where the attack goes. Replaces any earlier
        registration; takes effect in ``"fixed"`` mode only.

        :param x: The clean examples, in the defence's layout and ``clip_values``.
        :param radius: How far an input may be from its example: the attack's ``eps``.
        :param keys: One non-negative integer key per example (the example's index in the evaluation).
        :raises ValueError: For bad images, radius or keys (nothing is registered then).
        """
        xt = x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))
        x_cf = validate_images(xt, self.clip_values, self.channels_first, None, f"{type(self).__name__}.set_noise_keys")
        if isinstance(radius, bool) or not isinstance(radius, (int, float, np.floating)) or not math.isfinite(radius):
            raise ValueError(f"radius must be a finite non-negative number, got {radius!r}.")
        if radius < 0:
            raise ValueError(f"radius must be a finite non-negative number, got {radius!r}.")
        key_array = np.arange(len(x_cf)) if keys is None else np.asarray(keys)
        if key_array.shape != (len(x_cf),) or not np.issubdtype(key_array.dtype, np.integer) or (key_array < 0).any():
            raise ValueError(
                f"keys must be {len(x_cf)} non-negative integers (one per example), got shape {key_array.shape} of "
                f"{key_array.dtype}."
            )
        self._noise_anchors = x_cf.detach().flatten(1).cpu().clone()
        self._noise_keys = key_array.astype(np.int64)
        self._noise_radius = float(radius)

    def clear_noise_keys(self) -> None:
        """Forget the examples registered by :meth:`set_noise_keys`."""
        self._noise_anchors, self._noise_keys, self._noise_radius = None, None, 0.0

    def noise_keys_of(self, x_cf: torch.Tensor) -> np.ndarray:
        """
        The noise key of every row of channels-first ``x_cf``: that of the registered examples within the radius
        (L_inf; a small slack of ``1e-5`` of the ``clip_values`` range absorbs float32 rounding after projection).

        :raises ValueError: If no examples are registered, a row is farther than the radius from all of them, or a
            row is within the radius of examples with different keys.
        """
        if self._noise_anchors is None or self._noise_keys is None:
            raise ValueError(
                f"{type(self).__name__} with noise='fixed' needs the examples' noise keys: call "
                "set_noise_keys(x_clean, radius=eps) first."
            )
        anchors = self._noise_anchors
        rows = x_cf.detach().flatten(1).to(device="cpu", dtype=torch.float64)
        if rows.shape[1] != anchors.shape[1]:
            raise ValueError(
                f"inputs of shape {tuple(x_cf.shape[1:])} do not match the registered examples' "
                f"({anchors.shape[1]} values each)."
            )
        slack = 1e-5 * (float(self.clip_values[1]) - float(self.clip_values[0]))
        limit = self._noise_radius + slack
        keys = torch.from_numpy(self._noise_keys)
        best, low, high = _anchor_distances_and_keys(rows, anchors, keys, limit)
        far = best > limit
        if far.any():
            i = int(torch.nonzero(far)[0])
            raise ValueError(
                f"input row {i} is at L_inf distance {float(best[i]):.4g} from the nearest registered example, more "
                f"than the radius {self._noise_radius:g}: in noise='fixed' mode every input must lie near an example "
                "given to set_noise_keys."
            )
        ambiguous = high > low
        if ambiguous.any():
            i = int(torch.nonzero(ambiguous)[0])
            dist = (rows[i] - anchors.to(torch.float64)).abs().amax(-1)
            close = torch.nonzero(dist <= limit).flatten()
            near = [int(close[0]), int(close[keys[close] != keys[close[0]]][0])]
            raise ValueError(
                f"input row {i} is within the radius {self._noise_radius:g} of registered examples with different "
                f"noise keys ({', '.join(f'key {int(keys[j])} at L_inf distance {float(dist[j]):.4g}' for j in near)}"
                "): its fixed noise would depend on its pixels. Use a radius below half the distance between "
                "those examples, or register them in separate calls to set_noise_keys."
            )
        return low.numpy()  # within the radius of anchors of this one key only

    def _noise_source(self, x_cf: torch.Tensor, device: torch.device) -> Any:
        """What the call draws from: the defence's stream (fresh noise) or per-example keyed streams (fixed)."""
        if self.noise == "fixed":
            return KeyedStreams(int(self.seed), self.noise_keys_of(x_cf))  # type: ignore[arg-type]
        return self._generator(device)


def _anchor_distances_and_keys(
    rows: torch.Tensor, anchors: torch.Tensor, keys: torch.Tensor, limit: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    For every row (float64): the L_inf distance to the nearest anchor, and the smallest and largest key of the
    anchors within ``limit`` of it (they differ when its key would be ambiguous; ``low`` is the int64 maximum and
    ``high`` -1 when there is none); anchors are compared in chunks of at most ``_LOOKUP_BUDGET`` values.
    """
    best = torch.full((len(rows),), math.inf, dtype=torch.float64)
    big = torch.iinfo(torch.int64).max
    low = torch.full((len(rows),), big, dtype=torch.int64)
    high = torch.full((len(rows),), -1, dtype=torch.int64)
    chunk = max(1, _LOOKUP_BUDGET // max(1, rows.numel()))
    for start in range(0, len(anchors), chunk):
        part = anchors[start : start + chunk].to(torch.float64)
        dist = (rows[:, None, :] - part[None]).abs().amax(-1)
        best = torch.minimum(best, dist.amin(1))
        close, part_keys = dist <= limit, keys[start : start + chunk][None]
        low = torch.minimum(low, torch.where(close, part_keys, big).amin(1))
        high = torch.maximum(high, torch.where(close, part_keys, -1).amax(1))
    return best, low, high


def is_loss_gradient_call(x: torch.Tensor, y: Optional[torch.Tensor]) -> bool:
    """
    Whether ART is calling ``forward`` for a loss gradient: gradients on, ``x`` requiring them, labels given.

    ``predict`` and ``compute_loss`` run without gradients and ``class_gradient`` passes no labels: those calls keep
    one output row per input.
    """
    return y is not None and torch.is_grad_enabled() and x.requires_grad


def expand_for_eot(
    x: torch.Tensor, y: Optional[torch.Tensor], nb_eot: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """
    Repeat every input (and its label) ``nb_eot`` times, consecutively, for a loss-gradient call.

    ART's loss is the mean over the rows, so the gradient it returns for an input is the mean of the ``nb_eot``
    single-sample gradients: the EOT gradient. Other calls (see :func:`is_loss_gradient_call`) and ``nb_eot == 1``
    return ``x`` and ``y`` unchanged.

    :param x: ``(N, ...)`` inputs.
    :param y: ``(N, ...)`` labels or ``None``.
    :param nb_eot: Samples per input.
    :return: ``(x, y)``, ``(N * nb_eot, ...)`` each when expanded.
    """
    if nb_eot > 1 and y is not None and is_loss_gradient_call(x, y):
        return x.repeat_interleave(nb_eot, dim=0), y.repeat_interleave(nb_eot, dim=0)
    return x, y
