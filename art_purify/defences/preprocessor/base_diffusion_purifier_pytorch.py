# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The base class of the diffusion purifiers: validation, batching, gradient modes, EOT, seeded noise."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch
from tqdm.auto import tqdm

from art_purify.defences.preprocessor.eot import FixedNoiseMixin, expand_for_eot
from art_purify.defences.preprocessor.validation import validate_images
from art_purify.diffusion.sampling import from_model_space, to_model_space
from art_purify.diffusion.schedule import DiffusionSchedule
from art_purify.models.accelerated import PRECISIONS, AcceleratedNoiseModel
from art_purify.utils import AtomicParamsMixin, KeyedStreams, follow_device, module_dtype, stream_rows

logger = logging.getLogger(__name__)

#: Gradients a diffusion purifier can give an attacker (BPDA: wrap the defence in ``StraightThroughPyTorch``).
GRADIENT_MODES = ("exact", "surrogate")


class BaseDiffusionPurifierPyTorch(FixedNoiseMixin, AtomicParamsMixin, PreprocessorPyTorch):
    """
    Base class of the diffusion purifiers (:class:`DiffusionPurificationPyTorch`,
    :class:`HeterogeneousDiffusionPurificationPyTorch`); not a defence itself. Subclasses implement
    :meth:`_purify_model_space`.

    Gradient modes (all inside ``forward``, which is what ART differentiates):

    - ``"exact"``: autograd through every step of the defence's own sampler (``gradient_checkpointing=True``
      recomputes each UNet call in the backward pass so that memory does not grow with the number of steps);
    - ``"surrogate"``: the output value is the defence's output; the gradient is that of the short attack process
      (grid ``attack_grid``) fed the same input: ``out = full.detach() + (sur - sur.detach())``.

    For the BPDA reference (output value of the defence, identity gradient) wrap the defence in
    :class:`~art_purify.defences.preprocessor.StraightThroughPyTorch`.

    EOT: with ``nb_eot > 1``, a call that ART makes for a loss gradient (gradients on, labels given) expands every
    input into ``nb_eot`` independent purifications and repeats the labels
    (:func:`~art_purify.defences.preprocessor.eot.expand_for_eot`), so the mean loss gives the EOT-averaged
    gradient. Calls without gradients (``predict``, ``compute_loss``) and without labels (``class_gradient``) return
    one purification per input.

    Layout and dtype: ``channels_first=False`` takes and returns ``(N, H, W, C)`` (the classifier of a heterogeneous
    defence is called in that layout too). The output has the dtype of the defence's networks (the UNet's
    parameters), whatever the input's: float64 numpy data reaches a float32 classifier as float32 through ART's
    ``predict`` and ``loss_gradient`` (ART itself would hand the float64 tensor to the model, which fails), and the
    gradient flows back to the float64 input. A float64 UNet keeps float64 end to end (the finite-difference tests).

    Speed options (defaults safe; see docs/scale.md for what each one costs in accuracy and gains in time):
    ``precision="bfloat16"`` or ``"float16"`` runs the UNet calls, and only them, under ``torch.autocast`` (the
    classifier, the saliency and the sampler's arithmetic stay in the UNet's dtype; an attacker gets the exact
    gradient of that mixed-precision function); ``channels_last=True`` feeds the UNet channels-last tensors;
    ``compile_unet=True`` runs ``torch.compile`` on it (first call slow). EOT samples are already batched into one
    UNet call per step: the ``nb_eot`` copies of a batch are purified together, ``batch_size`` rows at a time.

    Noise: ``noise="fresh"`` (default) draws new noise on every call from the defence's seeded stream;
    ``noise="fixed"`` is the deterministic white-box (DW-box) mode of
    :class:`~art_purify.defences.preprocessor.eot.FixedNoiseMixin`: every example's noise is fixed by ``seed`` and
    its key (:meth:`set_noise_keys`), and an attacker differentiates that deterministic function exactly (or, with
    ``gradient="surrogate"``, its short process fed the same example's noise).
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        scheduler: Any = None,
        defence_grid: int = 200,
        attack_grid: int = 10,
        gradient: str = "exact",
        gradient_checkpointing: bool = True,
        nb_eot: int = 1,
        seed: Optional[int] = None,
        batch_size: int = 64,
        clip_values: Tuple[float, float] = (0.0, 1.0),
        channels_first: bool = True,
        apply_fit: bool = False,
        apply_predict: bool = True,
        device_type: str = "gpu",
        verbose: bool = False,
        precision: str = "float32",
        channels_last: bool = False,
        compile_unet: bool = False,
        noise: str = "fresh",
    ):
        super().__init__(device_type=device_type, is_fitted=True, apply_fit=apply_fit, apply_predict=apply_predict)
        if not isinstance(unet, torch.nn.Module):
            raise TypeError(f"unet must be a torch.nn.Module mapping (x_t, t) to noise, got {type(unet).__name__}.")
        if scheduler is None:
            from art_purify.models import build_scheduler

            scheduler = build_scheduler()
        self.unet = unet  # used frozen, call by call (see the class docstring); its own state is left alone
        self.scheduler = scheduler
        self.schedule = DiffusionSchedule(scheduler)
        self.defence_grid = defence_grid
        self.attack_grid = attack_grid
        self.gradient = gradient
        self.gradient_checkpointing = gradient_checkpointing
        self.nb_eot = nb_eot
        self.seed = seed
        self.batch_size = batch_size
        self.clip_values = clip_values
        self.channels_first = channels_first
        self.verbose = verbose
        self.precision = precision
        self.channels_last = channels_last
        self.compile_unet = compile_unet
        self.noise = noise
        self._generators = {}
        self._accelerated: Dict[Tuple[Any, ...], AcceleratedNoiseModel] = {}  # not a Module attribute: not hashed

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        for name in ("defence_grid", "attack_grid", "batch_size", "nb_eot"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.gradient not in GRADIENT_MODES:
            raise ValueError(f"gradient must be one of {GRADIENT_MODES}, got {self.gradient!r}.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}.")
        if len(self.clip_values) != 2 or not self.clip_values[0] < self.clip_values[1]:
            raise ValueError(f"clip_values must be (min, max) with min < max, got {self.clip_values!r}.")
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {self.precision!r}.")
        for name in ("channels_last", "compile_unet"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        self._check_noise()

    def _noise_model(self) -> torch.nn.Module:
        """The UNet as the samplers call it: itself, or wrapped for the speed options (one wrapper per setting, so
        that a compiled UNet is compiled once)."""
        if self.precision == "float32" and not self.channels_last and not self.compile_unet:
            return self.unet
        key = (id(self.unet), self.precision, self.channels_last, self.compile_unet)
        if key not in self._accelerated:
            self._accelerated = {key: AcceleratedNoiseModel(self.unet, *key[1:])}
        return self._accelerated[key]

    def _validate(self, x: torch.Tensor) -> torch.Tensor:
        """Check ``x`` and return it channels-first (see :func:`validation.validate_images`)."""
        return validate_images(x, self.clip_values, self.channels_first, self.unet, f"{type(self).__name__}.forward")

    # ------------------------------------------------------------------ the defence
    def _prepare(self, x: torch.Tensor):
        """Per-batch state shared by the full and the surrogate process (e.g. the saliency mask)."""
        return None

    def _purify_model_space(  # pylint: disable=too-many-arguments
        self, xd: torch.Tensor, grid: int, state, generator, gradient_checkpointing: bool
    ) -> torch.Tensor:
        raise NotImplementedError

    def _purify_chunk(  # pylint: disable=too-many-arguments
        self, x: torch.Tensor, grid: int, state, generator, gradient_checkpointing: bool
    ) -> torch.Tensor:
        xd = to_model_space(x, self.clip_values)
        out = self._purify_model_space(xd, grid, state, generator, gradient_checkpointing)
        return from_model_space(out, self.clip_values, clamp=True)

    def _model_dtype(self) -> torch.dtype:
        return module_dtype(self.unet)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """
        Purify ``x`` (values in ``clip_values``); differentiable as set by ``gradient``.

        :return: ``(purified, y)``; with EOT expansion (see the class docstring) ``nb_eot`` rows per input and ``y``
                 repeated to match.
        """
        x_cf = self._validate(x)
        need_grad = torch.is_grad_enabled() and x.requires_grad
        x_cf, y = expand_for_eot(x_cf, y, self.nb_eot)
        follow_device(self.unet, x.device)
        work = x_cf.to(self._model_dtype())
        source = self._noise_source(x_cf, x.device)
        outs = []
        chunks = range(0, work.shape[0], self.batch_size)
        for i in tqdm(chunks, desc=type(self).__name__, disable=not self.verbose or len(chunks) == 1):
            chunk = work[i : i + self.batch_size]
            part = stream_rows(source, slice(i, i + self.batch_size))

            def noise(part=part):  # fixed noise: each process of the chunk starts its examples' streams afresh
                return part.restarted() if isinstance(part, KeyedStreams) else part

            state = self._prepare(chunk.detach())
            if not need_grad:
                with torch.no_grad():
                    outs.append(self._purify_chunk(chunk, self.defence_grid, state, noise(), False))
            elif self.gradient == "exact":
                outs.append(self._purify_chunk(chunk, self.defence_grid, state, noise(), self.gradient_checkpointing))
            else:  # surrogate
                with torch.no_grad():
                    full = self._purify_chunk(chunk, self.defence_grid, state, noise(), False)
                sur = self._purify_chunk(chunk, self.attack_grid, state, noise(), self.gradient_checkpointing)
                outs.append(full + (sur - sur.detach()))
        out = torch.cat(outs)  # in the networks' dtype (see the class docstring)
        if not self.channels_first:
            out = out.permute(0, 2, 3, 1)
        return out, y

    def estimate_forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Same as ``forward`` (ART calls it only through ``estimate_gradient`` for mixed numpy/torch chains)."""
        return self.forward(x, y)[0]
