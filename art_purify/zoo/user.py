# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A user's own models: a classifier from an importable factory and a safetensors state dict, or from a TorchScript
file; the output directories of ``art-purify train-classifier`` and ``train-atop``; and the checks that tell a user
early and clearly that a piece does not fit (wrong weights, wrong input shape, a stage name the model lacks)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from art_purify.models import InpaintingGenerator, SmallResNet
from art_purify.zoo.loading import (
    ZooError,
    _load_into,
    load_atop_weights,
    load_classifier,
    load_classifier_weights,
    load_safetensors,
)

PathLike = Union[str, os.PathLike]

#: Suffixes read as TorchScript archives by :func:`load_user_classifier`.
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
#: Suffix read as a ``torch.export`` program (``torch.export.save``).
EXPORT_SUFFIX = ".pt2"


class ExportedClassifier(torch.nn.Module):
    """A ``torch.export`` program as a module that ART can put in eval mode: the program was exported in the mode it
    has (eval, for a classifier), so ``train()`` only sets this wrapper's flag."""

    def __init__(self, program: torch.nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> "ExportedClassifier":
        self.training = bool(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        return self.program(x)


def import_factory(spec: str) -> Any:
    """
    ``"package.module:name"`` -> the object ``name`` of that module (a class or a function building a model).

    The current directory is searched after ``sys.path``, so that ``my_nets.py`` beside the command is found.

    :raises ZooError: If the spec is malformed, the module cannot be imported or lacks ``name`` (the import error is
                      named).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ZooError(f"classifier factory {spec!r} must read 'package.module:name' (e.g. my_nets:LeNet5).")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # pylint: disable=broad-exception-caught  # any import-time failure is the user's to see
        raise ZooError(
            f"cannot import module {module_name!r} of factory {spec!r}: {type(err).__name__}: {err}"
        ) from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ZooError(f"module {module_name!r} has no attribute {attr!r} (factory {spec!r}).")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ZooError(f"factory {spec!r} is a {type(obj).__name__}, not a class or function.")
    return obj


def load_user_classifier(  # pylint: disable=too-many-branches  # one clear error per kind of spec
    spec: PathLike,
    weights: Optional[PathLike] = None,
    kwargs: Optional[Dict[str, Any]] = None,
    device: Optional[Union[str, torch.device]] = None,
) -> torch.nn.Module:
    """
    A user's classifier, in eval mode, float32, on ``device``.

    :param spec: ``"package.module:Factory"`` (called with ``kwargs``; its weights from ``weights``), a
                 ``torch.export`` program (``.pt2``, written by ``torch.export.save`` with a dynamic batch
                 dimension; exported in eval mode), a TorchScript file (``.pt``, ``.pth``, ``.ts``, written by
                 ``torch.jit.save``), or a ``train-classifier`` output directory (``config.json`` +
                 ``classifier.safetensors``).
    :param weights: A safetensors state dict for a factory (strict: every key and shape must match).
    :param kwargs: Keyword arguments of the factory.
    :raises ZooError: On a factory that cannot be imported, weights that do not fit, or a file of the wrong kind.
    :raises FileNotFoundError: On a missing file.
    """
    spec_path = Path(str(spec))
    if spec_path.is_dir():
        if weights is not None or kwargs:
            raise ZooError(f"{spec_path} is a train-classifier directory: it takes no separate weights or kwargs.")
        return load_classifier_dir(spec_path, device)
    if spec_path.suffix == EXPORT_SUFFIX:
        if not spec_path.is_file():
            raise FileNotFoundError(f"torch.export file {spec_path} does not exist.")
        if weights is not None or kwargs:
            raise ZooError(f"{spec_path} is a torch.export program: it carries its weights; drop the weights/kwargs.")
        try:
            program = torch.export.load(str(spec_path)).module()
        except Exception as err:  # pylint: disable=broad-exception-caught  # torch raises many kinds here
            raise ZooError(f"{spec_path} is not a torch.export program (torch.export.save): {err}") from err
        return ExportedClassifier(program).to(device or "cpu")
    if spec_path.suffix in TORCHSCRIPT_SUFFIXES or spec_path.is_file():
        if not spec_path.is_file():
            raise FileNotFoundError(f"TorchScript file {spec_path} does not exist.")
        if weights is not None or kwargs:
            raise ZooError(f"{spec_path} is a TorchScript file: it carries its weights; drop the weights/kwargs.")
        try:
            model = torch.jit.load(str(spec_path), map_location="cpu")
        except RuntimeError as err:
            raise ZooError(f"{spec_path} is not a TorchScript archive (torch.jit.save): {err}") from err
        return model.float().to(device or "cpu").eval()
    factory = import_factory(str(spec))
    with torch.random.fork_rng(devices=[]):  # the factory's random init must not move the caller's RNG
        try:
            model = factory(**(kwargs or {}))
        except Exception as err:  # pylint: disable=broad-exception-caught  # the user's constructor: say whose
            raise ZooError(
                f"factory {spec!r} could not be called with {kwargs or {}}: {type(err).__name__}: {err}"
            ) from err
    if not isinstance(model, torch.nn.Module):
        raise ZooError(f"factory {spec!r} returned a {type(model).__name__}, not a torch.nn.Module.")
    if weights is not None:
        _load_into(model, load_safetensors(weights), weights)
    return model.float().to(device or "cpu").eval()


def resolve_classifier(
    spec: Optional[PathLike] = None,
    weights: Optional[PathLike] = None,
    kwargs: Optional[Dict[str, Any]] = None,
    model: str = "fashion-mnist",
    device: Optional[Union[str, torch.device]] = None,
) -> torch.nn.Module:
    """The classifier a command was given: the user's (:func:`load_user_classifier`) when ``spec`` is given, else the
    zoo's ``model``; ``weights`` or ``kwargs`` without ``spec`` are refused."""
    if spec is None:
        if weights is not None or kwargs:
            raise ZooError("--classifier-weights and --classifier-kwargs need --classifier.")
        return load_classifier(model, device=device)
    return load_user_classifier(spec, weights, kwargs, device=device)


def classes_of(
    model: torch.nn.Module,
    x: Any,
    y: Any,
    device: Union[str, torch.device],
    expected: Optional[int] = None,
    origin: str = "data",
) -> int:
    """The number of classes of ``model`` (its logits on one input of ``x``'s shape), checked against ``expected``
    (``--nb-classes``) and the labels ``y``; ``ValueError`` naming the mismatch."""
    classes = infer_nb_classes(model, x.shape[1:], device)
    if expected is not None and expected != classes:
        raise ValueError(f"--nb-classes {expected} does not match the classifier, whose logits have {classes}.")
    if len(y) and int(y.max()) >= classes:
        raise ValueError(f"{origin}: label {int(y.max())} is not a class of the classifier ({classes} classes).")
    return classes


def load_classifier_dir(path: PathLike, device: Optional[Union[str, torch.device]] = None) -> SmallResNet:
    """The classifier written by ``art-purify train-classifier --out PATH`` (``config.json`` and
    ``classifier.safetensors``)."""
    path = Path(path)
    config_path, weights = path / "config.json", path / "classifier.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise ZooError(f"{path} is not a train-classifier output (needs config.json and classifier.safetensors).")
    return load_classifier_weights(weights, json.loads(config_path.read_text(encoding="utf-8")), device)


def load_atop_dir(
    path: PathLike, pretrained: bool = False, device: Optional[Union[str, torch.device]] = None
) -> InpaintingGenerator:
    """The AToP purifier written by ``art-purify train-atop --out PATH`` (``config.json`` and
    ``generator.safetensors``, or ``generator_pretrained.safetensors`` with ``pretrained``)."""
    path = Path(path)
    name = "generator_pretrained.safetensors" if pretrained else "generator.safetensors"
    config_path = path / "config.json"
    if not config_path.is_file() or not (path / name).is_file():
        raise ZooError(f"{path} is not a train-atop output (needs config.json and {name}).")
    return load_atop_weights(path / name, json.loads(config_path.read_text(encoding="utf-8")), device)


def infer_nb_classes(model: torch.nn.Module, input_shape: Sequence[int], device: Union[str, torch.device]) -> int:
    """Run ``model`` on one zero input of ``input_shape`` and return the width of its logits; a model that does not
    take that shape raises ``ZooError`` naming it."""
    probe = torch.zeros((2, *input_shape), device=device)
    try:
        with torch.no_grad():
            out = model(probe)
    except Exception as err:  # pylint: disable=broad-exception-caught  # any failure means the shape does not fit
        raise ZooError(
            f"the classifier does not take inputs of shape (N, {', '.join(map(str, input_shape))}): "
            f"{type(err).__name__}: {err}"
        ) from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ZooError(f"the classifier must return logits (N, classes); it returned {shape}.")
    return int(out.shape[1])


def supports_hooks(model: torch.nn.Module) -> bool:
    """Whether forward hooks on ``model``'s submodules fire (not on TorchScript or ``torch.export`` modules, whose
    submodules are not called as Python modules): the heterogeneous defence's saliency needs them."""
    return not isinstance(model, (torch.jit.ScriptModule, ExportedClassifier))


def check_stage_names(model: torch.nn.Module, stage_names: Sequence[str]) -> Tuple[str, ...]:
    """Raise ``ZooError`` naming the stages ``model`` lacks (and a few names it has), or when its hooks would not
    fire (a TorchScript or ``torch.export`` classifier)."""
    if not supports_hooks(model):
        raise ZooError(
            "the saliency stages need forward hooks, which TorchScript and torch.export classifiers do not run: "
            "give the classifier as a factory with safetensors weights for the heterogeneous defence."
        )
    if not stage_names:
        raise ZooError("no saliency stage names given (e.g. --stages layer1,layer2,layer3,layer4).")
    modules = dict(model.named_modules())
    missing = [name for name in stage_names if name not in modules]
    if missing or not stage_names:
        some = [n for n in modules if n][:12]
        raise ZooError(f"the classifier has no module(s) {missing or list(stage_names)}; its modules include {some}.")
    return tuple(stage_names)
