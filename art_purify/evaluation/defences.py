# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Building art_purify's defences by name, for the evaluation API and the command line."""

from __future__ import annotations

from typing import Any, Optional

import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch

DEFENCES = ("none", "uniform", "heterogeneous", "reconstruction-search", "random-masking", "atop-pretrained", "atop")
#: The defences with a generator instead of a diffusion model (AToP's purifier, before or after fine-tuning).
ATOP_DEFENCES = ("atop-pretrained", "atop")
#: The defences that need neither (AToP's random transform alone).
MODEL_FREE_DEFENCES = ("none", "random-masking")


def build_defence(
    name: str,
    unet: Optional[torch.nn.Module] = None,
    scheduler: Any = None,
    classifier_model: Optional[torch.nn.Module] = None,
    gradient: str = "exact",
    nb_eot: int = 1,
    seed: Optional[int] = None,
    device_type: str = "cpu",
    generator: Optional[torch.nn.Module] = None,
    transform: str = "rt2",
    **kwargs: Any,
) -> Optional[PreprocessorPyTorch]:
    """
    A defence by name: ``"none"`` (returns ``None``), ``"uniform"`` (:class:`DiffusionPurificationPyTorch`),
    ``"heterogeneous"`` (:class:`HeterogeneousDiffusionPurificationPyTorch`, which needs ``classifier_model``),
    ``"reconstruction-search"`` (:class:`ReconstructionSearchPyTorch`: deterministic, so ``nb_eot`` is not used and
    ``seed`` fixes its noise draws), ``"random-masking"`` (AToP's random transform alone,
    :class:`RandomMaskingPyTorch` with the preset ``transform``) or ``"atop"`` / ``"atop-pretrained"``
    (:class:`AToPPurificationPyTorch` with ``generator`` and the preset ``transform``; exact gradients only). Extra
    keyword arguments go to the defence's constructor.
    """
    if name not in DEFENCES:
        raise ValueError(f"unknown defence {name!r}; choose one of {', '.join(DEFENCES)}.")
    if name == "none":
        return None
    if name == "random-masking" or name in ATOP_DEFENCES:
        from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch

        if gradient != "exact":
            raise ValueError(
                f"defence {name!r} has only the exact gradient (got {gradient!r}); for the BPDA reference run the "
                "bpda attack."
            )
        if name == "random-masking":
            kwargs.pop("batch_size", None)  # one vectorised call: nothing to batch
            return RandomMaskingPyTorch.preset(transform, nb_eot=nb_eot, seed=seed, device_type=device_type, **kwargs)
        if generator is None:
            raise ValueError(f"defence {name!r} needs an AToP generator.")
        rt = RandomMaskingPyTorch.preset(transform, **{k: v for k, v in kwargs.items() if k == "clip_values"})
        return AToPPurificationPyTorch(generator, rt, nb_eot=nb_eot, seed=seed, device_type=device_type, **kwargs)
    if unet is None:
        raise ValueError(f"defence {name!r} needs a diffusion model (unet).")
    from art_purify.defences.preprocessor import (
        DiffusionPurificationPyTorch,
        HeterogeneousDiffusionPurificationPyTorch,
        ReconstructionSearchPyTorch,
    )

    if name == "reconstruction-search":
        return ReconstructionSearchPyTorch(
            unet, scheduler, gradient=gradient, seed=0 if seed is None else seed, device_type=device_type, **kwargs
        )
    common = dict(gradient=gradient, nb_eot=nb_eot, seed=seed, device_type=device_type, **kwargs)
    if name == "uniform":
        return DiffusionPurificationPyTorch(unet, scheduler, **common)
    if classifier_model is None:
        raise ValueError("the heterogeneous defence needs the classifier model for its saliency mask.")
    return HeterogeneousDiffusionPurificationPyTorch(unet, classifier_model, scheduler, **common)
