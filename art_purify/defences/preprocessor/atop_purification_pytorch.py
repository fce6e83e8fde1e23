# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
AToP's purifier as an ART preprocessor: a random transform that destroys the perturbation, then an inpainting
generator that restores the image.

| Paper link: https://arxiv.org/abs/2401.16352
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch
from tqdm.auto import tqdm

from art_purify.defences.preprocessor.eot import FixedNoiseMixin, expand_for_eot
from art_purify.defences.preprocessor.random_masking_pytorch import RandomMaskingPyTorch
from art_purify.defences.preprocessor.validation import validate_images
from art_purify.diffusion.sampling import from_model_space, to_model_space
from art_purify.utils import AtomicParamsMixin, follow_device, frozen, module_dtype, stream_rows


def inpaint(
    generator: torch.nn.Module, x_masked: torch.Tensor, masks: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Run an inpainting generator on transformed images in the model space [-1, 1].

    :param generator: ``generator(x_masked, mask)`` returning ``(coarse, refined)`` or one image.
    :param x_masked: ``(N, C, H, W)`` transformed images in [-1, 1].
    :param masks: ``(N, 1, H, W)``, 1 where a pixel is missing.
    :return: ``(coarse, refined)``, both ``x_masked``'s shape (the same tensor twice for a one-output generator).
    :raises ValueError: If the generator's output does not have the input's shape.
    """
    out = generator(x_masked, masks)
    coarse, refined = (out[0], out[-1]) if isinstance(out, (tuple, list)) else (out, out)
    for name, image in (("coarse", coarse), ("refined", refined)):
        if not torch.is_tensor(image) or tuple(image.shape) != tuple(x_masked.shape):
            shape = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
            raise ValueError(
                f"the generator's {name} output has shape {shape} but its input has {tuple(x_masked.shape)}: a "
                "purifier must return images of the size and channels it is given."
            )
    return coarse, refined


class AToPPurificationPyTorch(FixedNoiseMixin, AtomicParamsMixin, PreprocessorPyTorch):
    """
    AToP purification: the random transform (:class:`RandomMaskingPyTorch`, RT1 / RT2 / RT3), then the purifier
    network's refined output over the whole image; with several masks (RT3) the completions are combined by
    :meth:`RandomMaskingPyTorch.combine`.

    Works with any ART classifier taking the same images: the generator (e.g.
    :class:`~art_purify.models.InpaintingGenerator`, or any module ``generator(x_masked, mask) -> (coarse, refined)``
    in the model space [-1, 1]) runs in eval mode with its parameters' gradients off during each purification
    (:func:`~art_purify.utils.frozen`), and gets its own modes and ``requires_grad`` flags back afterwards: the
    defence does not change a generator that is still being trained, and an attacker's gradient never reaches it.

    Gradient an attacker gets: the exact one, through the generator (one forward per mask) and the transform, for
    the draw made in that call; use EOT (``nb_eot``) over the draws. For BPDA (a labelled reference only) wrap the
    defence in :class:`~art_purify.defences.preprocessor.StraightThroughPyTorch`.

    Randomness and EOT as for :class:`RandomMaskingPyTorch`: the draws come from this defence's own generator
    (``seed``), not from the transform's (whose ``seed``, ``nb_eot`` and ``noise`` this defence does not use);
    ``noise="fixed"`` fixes each example's draws by ``seed`` and its key (DW-box, see
    :class:`~art_purify.defences.preprocessor.eot.FixedNoiseMixin`).

    :param generator: The purifier network (used frozen call by call; its own state is left as it is).
    :param transform: The random transform (default: RT2, ``RandomMaskingPyTorch.preset("rt2")``).
    :param nb_eot: Draws per input in loss-gradient calls.
    :param seed: Seed of the draws (``None``: a fresh random seed).
    :param batch_size: Images per generator call (inputs times masks).
    :param clip_values: ``(min, max)`` of the inputs; the transform's (``None``) by default, and they must agree.
    :param channels_first: ``(N, C, H, W)`` if True, else ``(N, H, W, C)``.
    :param noise: ``"fresh"`` (new draws every call) or ``"fixed"`` (per-example draws fixed by ``seed`` and the keys
                  of :meth:`set_noise_keys`; needs a seed and ``nb_eot=1``).
    """

    params = ["nb_eot", "seed", "batch_size", "clip_values", "channels_first", "noise"]
    #: Random: the evaluation suite votes over draws and reseeds it per phase.
    stochastic = True

    def __init__(  # pylint: disable=too-many-arguments
        self,
        generator: torch.nn.Module,
        transform: Optional[RandomMaskingPyTorch] = None,
        nb_eot: int = 1,
        seed: Optional[int] = None,
        batch_size: int = 256,
        clip_values: Optional[Tuple[float, float]] = None,
        channels_first: bool = True,
        apply_fit: bool = False,
        apply_predict: bool = True,
        device_type: str = "gpu",
        verbose: bool = False,
        noise: str = "fresh",
    ):
        super().__init__(device_type=device_type, is_fitted=True, apply_fit=apply_fit, apply_predict=apply_predict)
        if not isinstance(generator, torch.nn.Module):
            raise TypeError(f"generator must be a torch.nn.Module, got {type(generator).__name__}.")
        transform = RandomMaskingPyTorch.preset("rt2") if transform is None else transform
        if not isinstance(transform, RandomMaskingPyTorch):
            raise TypeError(f"transform must be a RandomMaskingPyTorch, got {type(transform).__name__}.")
        self.generator = generator
        self.transform = transform
        self.nb_eot = nb_eot
        self.seed = seed
        self.batch_size = batch_size
        self.clip_values = tuple(transform.clip_values) if clip_values is None else clip_values
        self.channels_first = channels_first
        self.verbose = verbose
        self.noise = noise
        self._generators = {}
        self._check_params()

    def _check_params(self) -> None:
        for name in ("nb_eot", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}.")
        if len(self.clip_values) != 2 or not self.clip_values[0] < self.clip_values[1]:
            raise ValueError(f"clip_values must be (min, max) with min < max, got {self.clip_values!r}.")
        if tuple(map(float, self.clip_values)) != tuple(map(float, self.transform.clip_values)):
            raise ValueError(
                f"clip_values {tuple(self.clip_values)} differ from the transform's {tuple(self.transform.clip_values)}."
            )
        if not isinstance(self.channels_first, bool):
            raise ValueError(f"channels_first must be a bool, got {self.channels_first!r}.")
        self._check_noise()

    def purify(self, x: torch.Tensor, generator: Any) -> torch.Tensor:
        """
        Purify channels-first images ``x`` (values in ``clip_values``, the generator's dtype) with draws from
        ``generator`` (a ``torch.Generator``, or per-example :class:`~art_purify.utils.KeyedStreams`), differentiably
        in ``x`` (the purifier network runs frozen); batched by ``batch_size`` over
        inputs times masks.
        """
        clip = (float(self.clip_values[0]), float(self.clip_values[1]))
        k = int(self.transform.nb_masks)
        per_call = max(1, int(self.batch_size) // k)
        outs = []
        chunks = range(0, x.shape[0], per_call)
        with frozen(self.generator):
            for i in tqdm(chunks, desc=type(self).__name__, disable=not self.verbose or len(chunks) == 1):
                rows = slice(i, i + per_call)
                transformed, masks = self.transform.sample(x[rows], stream_rows(generator, rows))
                flat = to_model_space(transformed.flatten(0, 1), clip)
                refined = inpaint(self.generator, flat, masks.flatten(0, 1))[1]
                completions = from_model_space(refined, clip, clamp=True).view(transformed.shape)
                outs.append(self.transform.combine(completions, masks))
        return torch.cat(outs)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """
        Purify ``x`` (values in ``clip_values``), a fresh draw per call; exact gradients.

        :return: ``(purified, y)`` in the generator's dtype; with EOT expansion ``nb_eot`` rows per input and ``y``
                 repeated to match.
        """
        clip = (float(self.clip_values[0]), float(self.clip_values[1]))
        x_cf = validate_images(x, clip, self.channels_first, None, f"{type(self).__name__}.forward")
        channels = getattr(self.generator, "in_channels", None)
        if channels is not None and x_cf.shape[1] != channels:
            raise ValueError(
                f"input has {x_cf.shape[1]} channels (shape {tuple(x.shape)}) but the generator takes {channels}."
            )
        self.transform.blocks_per_mask(x_cf.shape[2], x_cf.shape[3])
        x_cf, y = expand_for_eot(x_cf, y, self.nb_eot)
        follow_device(self.generator, x.device)
        work = x_cf.to(module_dtype(self.generator))
        stream = self._noise_source(x_cf, x.device)
        before = stream.get_state() if isinstance(stream, torch.Generator) else None
        try:
            with torch.enable_grad() if torch.is_grad_enabled() and x.requires_grad else torch.no_grad():
                out = self.purify(work, stream)
        except BaseException:
            if before is not None:
                stream.set_state(before)  # a call that fails draws nothing
            raise
        if not self.channels_first:
            out = out.permute(0, 2, 3, 1)
        return out, y

    def estimate_forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Same as ``forward`` (ART calls it only through ``estimate_gradient`` for mixed numpy/torch chains)."""
        return self.forward(x, y)[0]
