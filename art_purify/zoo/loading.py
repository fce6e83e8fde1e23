# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Loading of the default models shipped in the package, and of user models, from safetensors only."""

from __future__ import annotations

import json
import os
import struct
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

from art_purify.models import DDPM_SCHEDULE, InpaintingGenerator, SmallResNet

PathLike = Union[str, os.PathLike]

#: Zoo entries: name -> file stems inside ``art_purify/zoo/weights``.
ZOO: Dict[str, Dict[str, str]] = {
    "fashion-mnist": {
        "classifier": "fashion-mnist-classifier",
        "diffusion": "fashion-mnist-unet",
        "atop": "fashion-mnist-atop",
        "atop-pretrained": "fashion-mnist-atop-pretrained",
    },
}


class ZooError(ValueError):
    """An unknown zoo name or a weights file that cannot be used."""


def _check_name(name: str, kind: str) -> str:
    if name not in ZOO or kind not in ZOO[name]:
        available = ", ".join(sorted(n for n in ZOO if kind in ZOO[n]))
        raise ZooError(f"unknown zoo {kind} {name!r}; available: {available}.")
    return ZOO[name][kind]


def _weights_path(stem: str, suffix: str) -> Path:
    return Path(str(resources.files("art_purify.zoo").joinpath("weights", stem + suffix)))


def load_safetensors(path: PathLike, device: Union[str, torch.device] = "cpu") -> Dict[str, torch.Tensor]:
    """
    Load a state dict from a safetensors file, refusing anything else (pickles are never unpickled).

    :raises FileNotFoundError: If ``path`` does not exist.
    :raises ZooError: If the file is not a valid safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist.")
    with open(path, "rb") as handle:
        head = handle.read(9)
    size = path.stat().st_size
    if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > size - 8:
        raise ZooError(
            f"{path} is not a safetensors file (art_purify loads weights from safetensors only; convert a torch "
            "checkpoint with safetensors.torch.save_file(model.state_dict(), path))."
        )
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise ZooError(f"{path} is a corrupt safetensors file: {err}") from err


def _load_into(module: torch.nn.Module, state: Dict[str, torch.Tensor], path: PathLike) -> None:
    reference = module.state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        raise ZooError(f"{path} does not match the architecture: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    for key, tensor in state.items():
        if tensor.shape != reference[key].shape:
            raise ZooError(f"{path}: {key} has shape {tuple(tensor.shape)}, expected {tuple(reference[key].shape)}.")
    module.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()})


def load_classifier_weights(
    weights: PathLike, config: Dict, device: Optional[Union[str, torch.device]] = None
) -> SmallResNet:
    """Build a :class:`SmallResNet` from ``config`` (as in ``config.json``) and load ``weights`` (safetensors)."""
    kwargs = {k: config[k] for k in ("in_channels", "num_classes", "widths", "blocks") if k in config}
    model = SmallResNet(**kwargs)
    _load_into(model, load_safetensors(weights), weights)
    return model.to(device or "cpu").eval()


def load_classifier(name: str = "fashion-mnist", device: Optional[Union[str, torch.device]] = None) -> SmallResNet:
    """
    The default classifier of a zoo entry, in eval mode, float32.

    :param name: Zoo name (``"fashion-mnist"``).
    :param device: Torch device (default CPU).
    :return: A :class:`~art_purify.models.SmallResNet` taking ``(N, 1, 28, 28)`` in [0, 1] and returning logits.
    """
    stem = _check_name(name, "classifier")
    meta = json.loads(_weights_path(stem, ".json").read_text(encoding="utf-8"))
    return load_classifier_weights(_weights_path(stem, ".safetensors"), meta["config"], device)


def load_unet_weights(
    weights: PathLike, unet_config: Dict, device: Optional[Union[str, torch.device]] = None
) -> torch.nn.Module:
    """Build a :class:`diffusers.UNet2DModel` from ``unet_config`` and load ``weights`` (safetensors), float32."""
    from art_purify.models import build_unet

    with torch.random.fork_rng(devices=[]):  # diffusers' random init must not move the caller's RNG
        unet = build_unet(unet_config)
    _load_into(unet, load_safetensors(weights), weights)
    return unet.to(device or "cpu").eval().requires_grad_(False)


def load_diffusion(name: str = "fashion-mnist", device: Optional[Union[str, torch.device]] = None) -> Tuple:
    """
    The default diffusion model of a zoo entry: ``(unet, scheduler)``.

    :return: A :class:`diffusers.UNet2DModel` in eval mode (float32, gradients off for its parameters) predicting
             the noise of ``x_t`` in [-1, 1], and the :class:`diffusers.DDPMScheduler` it was trained with
             (DDPM linear schedule, T = 1000, beta 1e-4 to 0.02).
    """
    from diffusers import DDPMScheduler

    stem = _check_name(name, "diffusion")
    meta = json.loads(_weights_path(stem, ".json").read_text(encoding="utf-8"))
    unet = load_unet_weights(_weights_path(stem, ".safetensors"), meta["unet_config"], device)
    return unet, DDPMScheduler(**meta.get("scheduler_config", DDPM_SCHEDULE))


def load_atop_weights(
    weights: PathLike, config: Dict, device: Optional[Union[str, torch.device]] = None
) -> InpaintingGenerator:
    """Build an :class:`InpaintingGenerator` from ``config`` (as in ``config.json``) and load ``weights``."""
    kwargs = {k: config[k] for k in ("in_channels", "width", "dilations", "refine") if k in config}
    with torch.random.fork_rng(devices=[]):  # the modules' random init must not move the caller's RNG
        generator = InpaintingGenerator(**kwargs)
    _load_into(generator, load_safetensors(weights), weights)
    return generator.to(device or "cpu").eval().requires_grad_(False)


def load_atop(
    name: str = "fashion-mnist", pretrained: bool = False, device: Optional[Union[str, torch.device]] = None
) -> InpaintingGenerator:
    """
    The AToP purifier of a zoo entry, trained for its classifier (``art-purify train-atop``; see docs/atop.md).

    :param pretrained: The pre-trained-only generator (before the adversarial fine-tuning), for comparisons.
    :return: An :class:`~art_purify.models.InpaintingGenerator` in eval mode with frozen parameters; plug it into
             :class:`~art_purify.defences.preprocessor.AToPPurificationPyTorch`.
    """
    stem = _check_name(name, "atop-pretrained" if pretrained else "atop")
    meta = json.loads(_weights_path(stem, ".json").read_text(encoding="utf-8"))
    return load_atop_weights(_weights_path(stem, ".safetensors"), meta["config"], device)


def load_diffusion_dir(path: PathLike, device: Optional[Union[str, torch.device]] = None) -> Tuple:
    """
    A user's diffusers model directory, e.g. a CIFAR-10 DDPM saved with ``save_pretrained``: ``(unet, scheduler)``.

    The directory holds ``config.json`` and ``diffusion_pytorch_model.safetensors`` (or a pipeline directory with
    ``unet/`` and ``scheduler/`` sub-folders, as ``art-purify train-diffusion`` writes; the flat ``unet.safetensors``
    + ``unet_config.json`` of earlier runs is read too). Only safetensors weights are read and nothing is
    downloaded. Without a scheduler config the DDPM linear schedule is used.
    """
    from diffusers import DDPMScheduler, UNet2DModel

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"diffusion model directory {path} does not exist.")
    flat = (path / "unet.safetensors").is_file() and (path / "unet_config.json").is_file()  # an earlier run's layout
    if flat and not (path / "unet" / "config.json").is_file() and not (path / "config.json").is_file():
        config = json.loads((path / "unet_config.json").read_text(encoding="utf-8"))
        schedule = path / "scheduler_config.json"
        schedule_config = json.loads(schedule.read_text(encoding="utf-8")) if schedule.is_file() else DDPM_SCHEDULE
        return load_unet_weights(path / "unet.safetensors", config, device), DDPMScheduler(**schedule_config)
    unet_dir = path / "unet" if (path / "unet" / "config.json").is_file() else path
    if not (unet_dir / "config.json").is_file():
        raise ZooError(f"{path} holds no diffusers config.json (nor unet/config.json).")
    weights = unet_dir / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise ZooError(f"{unet_dir} holds no diffusion_pytorch_model.safetensors (only safetensors weights are read).")
    load_safetensors(weights)  # validates the format with a clear message before diffusers sees it
    unet = UNet2DModel.from_pretrained(
        str(unet_dir), use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False  # no `accelerate` needed
    )
    scheduler_dir = path / "scheduler"
    if (scheduler_dir / "scheduler_config.json").is_file():
        scheduler = DDPMScheduler.from_pretrained(str(scheduler_dir), local_files_only=True)
    else:
        scheduler = DDPMScheduler(**DDPM_SCHEDULE)
    return unet.to(device or "cpu").eval().requires_grad_(False), scheduler


def export_run(run_dir: PathLike, stem: str, dest: Optional[PathLike] = None) -> Path:
    """
    Copy the artefacts of a ``train-classifier``, ``train-diffusion`` or ``train-atop`` run into the zoo's weights
    folder.

    Writes ``<stem>.safetensors`` and ``<stem>.json`` (architecture config, schedule and the run's model card); for
    ``train-atop`` also ``<stem>-pretrained.*``, the generator before its fine-tuning.

    :param run_dir: The ``--out`` directory of the training command.
    :param stem: File stem, e.g. ``"fashion-mnist-classifier"``.
    :param dest: Target folder (default: the package's ``zoo/weights``).
    :return: Path of the written safetensors file.
    """
    import shutil

    from art_purify.engine import save_weights

    run_dir = Path(run_dir)
    dest = Path(dest) if dest is not None else _weights_path(stem, "").parent
    card = json.loads((run_dir / "model_card.json").read_text(encoding="utf-8"))
    weights: Optional[Path] = None  # the run's own file, copied; or for a diffusion run the UNet, re-saved in fp16
    unet_state: Optional[Dict[str, torch.Tensor]] = None
    if (run_dir / "classifier.safetensors").is_file():
        weights = run_dir / "classifier.safetensors"
        meta = {"kind": "classifier", "config": json.loads((run_dir / "config.json").read_text(encoding="utf-8"))}
    elif (run_dir / "generator.safetensors").is_file():
        weights = run_dir / "generator.safetensors"
        meta = {"kind": "atop", "config": json.loads((run_dir / "config.json").read_text(encoding="utf-8"))}
        pretrained = run_dir / "generator_pretrained.safetensors"
        if pretrained.is_file():  # the pre-trained-only purifier, shipped beside it for comparisons
            load_safetensors(pretrained)
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pretrained, dest / f"{stem}-pretrained.safetensors")
            extra = {**meta, "kind": "atop-pretrained", "model_card": card}
            (dest / f"{stem}-pretrained.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n", "utf-8")
    elif (run_dir / "unet" / "config.json").is_file() or (run_dir / "unet.safetensors").is_file():
        unet, scheduler = load_diffusion_dir(run_dir)

        def public(config: Any) -> Dict:
            return {k: v for k, v in dict(config).items() if not k.startswith("_")}

        meta = {"kind": "diffusion", "unet_config": public(unet.config), "scheduler_config": public(scheduler.config)}
        unet_state = unet.state_dict()
    else:
        raise ZooError(
            f"{run_dir} holds no classifier.safetensors, generator.safetensors, unet/config.json nor unet.safetensors."
        )
    if weights is not None:
        load_safetensors(weights)  # checked before it is copied
    meta["model_card"] = card
    dest.mkdir(parents=True, exist_ok=True)
    if unet_state is not None:
        save_weights(unet_state, dest / f"{stem}.safetensors", dtype=torch.float16)  # the zoo stores fp16
    elif weights is not None:
        shutil.copyfile(weights, dest / f"{stem}.safetensors")
    (dest / f"{stem}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dest / f"{stem}.safetensors"
