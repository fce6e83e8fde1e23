# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Activation saliency from a classifier's stages, as used by heterogeneous diffusion purification."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from art_purify.utils import eval_mode


def _unwrap(classifier) -> torch.nn.Module:
    """Accept a ``torch.nn.Module`` or an ART ``PyTorchClassifier`` (its ``model``)."""
    if isinstance(classifier, torch.nn.Module):
        return classifier
    model = getattr(classifier, "model", None)
    if isinstance(model, torch.nn.Module):
        return model
    raise TypeError(f"saliency needs a torch.nn.Module or an ART PyTorchClassifier, got {type(classifier).__name__}.")


class ActivationSaliency:
    """
    Pixel saliency from the squared activations of named classifier stages.

    For each stage: sum of squared activations over channels, bilinear upsampling to the input size, min-max
    normalisation per image; stages are combined by the pixel-wise maximum. The binary mask marks salient pixels
    (1) by a threshold on that map or by keeping a top fraction of pixels per image. Computed without gradients:
    for an attacker the mask is a constant.

    The saliency pass is computed in eval mode, the modes restored: the classifier runs with every submodule in eval
    mode and each gets its own ``training`` flag back afterwards, however the pass ends. So a pass made while the
    classifier trains (ART's ``fit`` with ``apply_fit=True``) leaves its BatchNorm running statistics alone, draws no
    dropout noise, and gives an image the mask it has in any other batch.

    :param classifier: The classifier (``torch.nn.Module`` taking the defence's input in [0, 1], or an ART
                       ``PyTorchClassifier``, whose ``model`` is used). Its modes and state are left as they are.
    :param stage_names: Names of the modules to hook (``dict(model.named_modules())`` keys); by default the model's
                        ``stage_names`` attribute (as on :class:`~art_purify.models.SmallResNet`).
    :param threshold: Saliency at or above which a pixel is salient (the paper: 0.85 on CIFAR-10).
    :param top_fraction: If given, instead keep this fraction of the most salient pixels per image (the paper: 0.15
                         on ImageNet).
    :param channels_first: The layout the classifier takes: ``(N, C, H, W)`` (default) or ``(N, H, W, C)``. Inputs
                           to :meth:`saliency_map` and :meth:`mask` are in that layout; the maps are always
                           ``(N, 1, H, W)``. Stage activations are read with channels on dimension 1 (as PyTorch
                           convolutions produce them).
    """

    def __init__(
        self,
        classifier: Any,
        stage_names: Optional[Sequence[str]] = None,
        threshold: float = 0.85,
        top_fraction: Optional[float] = None,
        channels_first: bool = True,
    ) -> None:
        self.model = _unwrap(classifier)
        self.channels_first = bool(channels_first)
        if stage_names is None:
            stage_names = getattr(self.model, "stage_names", None)
            if stage_names is None:
                raise ValueError(
                    "stage_names is required for a model without a `stage_names` attribute: give the names of the "
                    "modules ending each stage (e.g. ['layer1', 'layer2', 'layer3', 'layer4'] for a torchvision "
                    "ResNet)."
                )
        modules = dict(self.model.named_modules())
        missing = [name for name in stage_names if name not in modules]
        if missing or len(stage_names) == 0:
            raise ValueError(f"stage_names {missing or list(stage_names)} are not modules of the classifier.")
        self.stage_names = list(stage_names)
        self._modules = [modules[name] for name in self.stage_names]
        self.configure(threshold, top_fraction)

    def configure(self, threshold: float, top_fraction: Optional[float] = None) -> None:
        """Validate and set how the binary mask is cut from the saliency map."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"mask threshold must lie in [0, 1], got {threshold}.")
        if top_fraction is not None and not 0.0 < top_fraction <= 1.0:
            raise ValueError(f"mask top fraction must lie in (0, 1], got {top_fraction}.")
        self.threshold = float(threshold)
        self.top_fraction = top_fraction

    @torch.no_grad()
    def saliency_map(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous saliency in [0, 1], shape ``(N, 1, H, W)``, for ``x`` in the classifier's input space and
        layout (the classifier run in eval mode, its modes restored)."""
        size = x.shape[-2:] if self.channels_first else x.shape[1:3]
        acts = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: acts.append(out)) for m in self._modules]
        try:
            with eval_mode(self.model):  # the modes of every submodule are put back (see the class docstring)
                self.model(x)
        finally:
            for hook in hooks:
                hook.remove()
        if len(acts) != len(self._modules):
            raise RuntimeError(f"expected {len(self._modules)} stage activations, got {len(acts)}.")
        combined = None
        for act in acts:
            act = act[0] if isinstance(act, (tuple, list)) else act
            energy = act.float().pow(2).sum(1, keepdim=True)
            energy = F.interpolate(energy, size=tuple(size), mode="bilinear", align_corners=False)
            flat = energy.flatten(1)
            lo, hi = flat.min(1, keepdim=True)[0], flat.max(1, keepdim=True)[0]
            norm = ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(energy)
            combined = norm if combined is None else torch.maximum(combined, norm)
        assert combined is not None  # at least one stage (checked in __init__)
        return combined.to(x.dtype)

    @torch.no_grad()
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Binary mask ``(N, 1, H, W)``: 1 on salient pixels, 0 elsewhere."""
        saliency = self.saliency_map(x)
        if self.top_fraction is None:
            return (saliency >= self.threshold).to(x.dtype)
        flat = saliency.flatten(1)
        k = max(1, int(round(self.top_fraction * flat.shape[1])))
        kth = flat.topk(k, dim=1).values[:, -1:]
        return (flat >= kth).view_as(saliency).to(x.dtype)
