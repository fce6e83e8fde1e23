# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
A noise model run faster: autocast to bfloat16 / float16, channels-last inputs, ``torch.compile``. The diffusion
purifiers wrap their UNet in it for the speed options (``precision``, ``channels_last``, ``compile_unet``); only the
UNet's calls change, the classifier and the attack arithmetic stay in the purifier's dtype.

Autocast runs the UNet's matrix products and convolutions in the low precision and keeps its reductions
(normalisations, softmax) in float32, as ``torch.autocast`` does; the predicted noise comes back in the input's dtype,
and the backward pass (first order, checkpointed recomputation included) goes through the same casts, so an attacker
differentiates exactly the function the defence computes.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

#: Names of the UNet precisions and their autocast dtypes (``None``: no autocast).
PRECISIONS: Dict[str, Optional[torch.dtype]] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class AcceleratedNoiseModel(torch.nn.Module):
    """
    ``model(x_t, t)`` under the speed options; the output (``.sample`` of a diffusers model taken) has ``x_t``'s dtype
    and the contiguous layout.

    :param model: The noise model (a diffusers ``UNet2DModel`` or any ``(x_t, t) -> noise`` module); held as a
                  submodule, its weights and state are used as they are, never copied or changed.
    :param precision: ``"float32"`` (no autocast), ``"bfloat16"`` or ``"float16"`` (autocast on ``x_t``'s device).
    :param channels_last: Feed ``x_t`` in the channels-last memory format (faster convolutions on tensor cores).
    :param compile_model: Run ``torch.compile(model)`` (compiled on the first call; first-order gradients only).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        precision: str = "float32",
        channels_last: bool = False,
        compile_model: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(precision, str) or precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}.")
        self.model = model
        self.precision = precision
        self.channels_last = bool(channels_last)
        self.compile_model = bool(compile_model)
        self._compiled: Any = None

    def _callable(self) -> Any:
        if not self.compile_model:
            return self.model
        if self._compiled is None:
            self._compiled = torch.compile(self.model)
        return self._compiled

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # pylint: disable=arguments-differ
        """The predicted noise of ``xt`` at timesteps ``t``, in ``xt``'s dtype."""
        inp = xt.contiguous(memory_format=torch.channels_last) if self.channels_last else xt
        dtype = PRECISIONS[self.precision]
        with torch.autocast(device_type=xt.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = self._callable()(inp, t)
        out = getattr(out, "sample", out)
        return out.to(xt.dtype).contiguous()
