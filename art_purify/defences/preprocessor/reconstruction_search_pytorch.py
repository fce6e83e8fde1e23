# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Deterministic sharpness-aware reconstruction search (PurSAMERE) as an ART preprocessing defence."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch
from tqdm.auto import tqdm

from art_purify.defences.preprocessor.straight_through_pytorch import straight_through
from art_purify.defences.preprocessor.validation import validate_images
from art_purify.diffusion.reconstruction import (
    NORMS,
    TweedieDenoiser,
    expected_reconstruction_error,
    fixed_noises,
    recomputed_step,
    sam_search_step,
    twice_differentiable_attention,
)
from art_purify.diffusion.sampling import to_model_space
from art_purify.utils import AtomicParamsMixin, follow_device, frozen, module_dtype

#: Gradients the search gives an attacker: the unrolled search, its last ``unrolled_steps`` steps (identity before
#: them; cheaper), or BPDA's identity (a reference only).
SEARCH_GRADIENT_MODES = ("exact", "truncated", "bpda")


class ReconstructionSearchPyTorch(
    AtomicParamsMixin, PreprocessorPyTorch
):  # pylint: disable=too-many-instance-attributes
    """
    PurSAMERE: map an input to a nearby point of low expected reconstruction error (ERE) under a denoiser, with
    sharpness-aware (SAM) steps, so that the output settles in a flat region of the ERE landscape.

    | Paper link: https://arxiv.org/abs/2602.06269 (only the abstract is public; see ``docs/defences.md``)

    ``ERE(z) = mean_n || D(z + sigma * eps_n, sigma) - z ||^2`` in model space, with ``nb_noise`` draws ``eps_n``
    fixed by ``seed`` and the same for every image, so the output for an image depends on that image alone. From
    ``z = x``, ``max_iter`` steps of :func:`art_purify.diffusion.reconstruction.sam_search_step`: the ERE gradient
    ``g``, the SAM point ``z + rho g / ||g||``, a normalised descent step of size ``step_size`` with the gradient there,
    and a projection onto the ``norm`` ball of ``radius`` around ``x`` and onto ``clip_values``. ``rho = 0`` is plain
    ERE descent; ``max_iter = 0`` or ``radius = 0`` returns the input.

    The defence is DETERMINISTIC: attack it with plain white-box attacks (no EOT). Gradients an attacker gets:

    - ``gradient="exact"`` (default): autograd through the whole unrolled search (second-order: every step
      differentiates an ERE gradient, ``create_graph``); with ``gradient_checkpointing=True`` each step is recomputed
      in the backward pass, so memory does not grow with ``max_iter``;
    - ``gradient="truncated"``: the first ``max_iter - unrolled_steps`` steps without a graph and the identity
      gradient through them, then the last ``unrolled_steps`` steps unrolled exactly (the same output; the gradient
      costs about ``unrolled_steps / max_iter`` of the exact one); an approximation, measured against ``"exact"`` in
      ``docs/defences.md``. ``unrolled_steps = max_iter`` is ``"exact"``, ``0`` is ``"bpda"``;
    - ``gradient="bpda"``: the search's output with the identity gradient, a weak reference only (the same formula as
      :class:`~art_purify.defences.preprocessor.StraightThroughPyTorch`).

    Denoiser: ``unet`` (+ ``scheduler``), a DDPM noise model used through Tweedie's formula at the timestep whose noise
    level is nearest to ``sigma`` (:class:`~art_purify.diffusion.reconstruction.TweedieDenoiser`; ``sigma`` is then
    that timestep's level, :attr:`effective_sigma`), or any module ``denoiser(x_noisy, sigma) -> x_hat`` on model
    space [-1, 1]. Diffusers attention runs through the classic processor during the exact search (the fused kernels
    have no double backward) and is put back afterwards. The network is not changed (beyond following the input's
    device): the search, and its recomputation in the backward pass, run it in eval mode with its parameters'
    gradients off (:func:`~art_purify.utils.frozen`), and its modes and ``requires_grad`` flags are put back
    afterwards, so a model still being trained keeps training and no gradient reaches its ``.grad``.

    Shape: ``(N, C, H, W)`` (or ``(N, H, W, C)`` with ``channels_first=False``), values in ``clip_values``; the output
    has the denoiser's dtype.

    Example::

        unet, scheduler = art_purify.zoo.load_diffusion("fashion-mnist")
        defence = ReconstructionSearchPyTorch(unet, scheduler)  # sigma 0.5, 2 draws, 5 steps of 0.03, radius 0.25
        classifier = PyTorchClassifier(model, loss, (1, 28, 28), 10, clip_values=(0, 1),
                                       preprocessing_defences=[defence])

    :param unet: DDPM noise model (or ``None`` with ``denoiser``); used frozen, its own state left as it is.
    :param scheduler: Its diffusers scheduler (default DDPM linear, T = 1000).
    :param denoiser: Instead of ``unet``, a module ``D(x_noisy, sigma) -> x_hat`` in model space (used frozen too).
    :param sigma: Noise level of the ERE in model space ([-1, 1] data), > 0.
    :param nb_noise: Noise draws of the ERE (one denoiser call with ``nb_noise`` x batch images).
    :param max_iter: Search steps (0: the input is returned).
    :param step_size: Mean per-pixel move of a step, in input units.
    :param rho: SAM radius (0: plain ERE descent).
    :param radius: Radius of the search ball around the input, in input units (``norm``).
    :param norm: ``"inf"`` or ``"2"``.
    :param gradient: ``"exact"``, ``"truncated"`` or ``"bpda"``.
    :param unrolled_steps: Steps unrolled by ``gradient="truncated"`` (the last ones; at most ``max_iter`` are).
    :param gradient_checkpointing: Recompute each step in the backward pass (exact mode).
    :param seed: Seed of the fixed noise draws.
    :param batch_size: Images searched at once.
    :param clip_values: Data range; inputs outside it are rejected.
    :param channels_first: Layout of the input.
    :param apply_fit: Apply in ``fit`` (default False).
    :param apply_predict: Apply in ``predict`` (default True).
    :param device_type: ``"gpu"`` or ``"cpu"`` for numpy calls (``forward`` follows the input's device).
    :param verbose: Progress bar over internal batches.
    """

    #: Deterministic: ``seed`` fixes the noise draws once; evaluation phases do not reseed it.
    stochastic = False

    params = [
        "sigma", "nb_noise", "max_iter", "step_size", "rho", "radius", "norm", "gradient", "unrolled_steps",
        "gradient_checkpointing",
        "seed", "batch_size", "clip_values", "channels_first", "verbose",
    ]  # fmt: skip

    def __init__(  # pylint: disable=too-many-arguments,too-many-locals
        self,
        unet: Optional[torch.nn.Module] = None,
        scheduler: Any = None,
        denoiser: Optional[torch.nn.Module] = None,
        sigma: float = 0.5,
        nb_noise: int = 2,
        max_iter: int = 5,
        step_size: float = 0.03,
        rho: float = 0.05,
        radius: float = 0.25,
        norm: str = "inf",
        gradient: str = "exact",
        unrolled_steps: int = 1,
        gradient_checkpointing: bool = True,
        seed: int = 0,
        batch_size: int = 64,
        clip_values: Tuple[float, float] = (0.0, 1.0),
        channels_first: bool = True,
        apply_fit: bool = False,
        apply_predict: bool = True,
        device_type: str = "gpu",
        verbose: bool = False,
    ) -> None:
        super().__init__(device_type=device_type, is_fitted=True, apply_fit=apply_fit, apply_predict=apply_predict)
        if (unet is None) == (denoiser is None):
            raise ValueError("give exactly one of unet (a DDPM noise model) and denoiser (a D(x_noisy, sigma) module).")
        network = unet if unet is not None else denoiser
        if not isinstance(network, torch.nn.Module):
            raise TypeError(f"the denoiser must be a torch.nn.Module, got {type(network).__name__}.")
        self.unet = unet  # used frozen, call by call (see the class docstring); its own state is left alone
        self.denoiser: torch.nn.Module = TweedieDenoiser(unet, scheduler) if unet is not None else network
        self.sigma = sigma
        self.nb_noise = nb_noise
        self.max_iter = max_iter
        self.step_size = step_size
        self.rho = rho
        self.radius = radius
        self.norm = norm
        self.gradient = gradient
        self.unrolled_steps = unrolled_steps
        self.gradient_checkpointing = gradient_checkpointing
        self.seed = seed
        self.batch_size = batch_size
        self.clip_values = clip_values
        self.channels_first = channels_first
        self.verbose = verbose
        self._noises: Dict[Tuple, torch.Tensor] = {}
        self._check_params()

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        for name in ("max_iter", "unrolled_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
        for name in ("nb_noise", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name, low_ok in (("sigma", False), ("step_size", False), ("rho", True), ("radius", True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
            if value < 0 or (value == 0 and not low_ok):
                raise ValueError(f"{name} must be {'non-negative' if low_ok else 'positive'}, got {value!r}.")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}.")
        if self.gradient not in SEARCH_GRADIENT_MODES:
            raise ValueError(f"gradient must be one of {SEARCH_GRADIENT_MODES}, got {self.gradient!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {self.seed!r}.")
        if len(self.clip_values) != 2 or self.clip_values[0] >= self.clip_values[1]:
            raise ValueError(f"clip_values must be (min, max) with min < max, got {self.clip_values!r}.")

    def _after_set_params(self) -> None:
        self._noises = {}  # another seed or nb_noise: new fixed draws

    @property
    def effective_sigma(self) -> float:
        """The ERE's noise level: ``sigma``, or for a DDPM denoiser the nearest timestep's ``sigma_t``."""
        if isinstance(self.denoiser, TweedieDenoiser):
            return self.denoiser.effective_sigma(self.sigma)
        return float(self.sigma)

    def noise_draws(self, shape: Tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The fixed ``(nb_noise, C, H, W)`` draws for images of ``shape`` (drawn once per shape from ``seed``)."""
        key = (tuple(shape), str(device), dtype)
        if key not in self._noises:
            self._noises[key] = fixed_noises(self.nb_noise, tuple(shape), int(self.seed), device, dtype)
        return self._noises[key]

    # ------------------------------------------------------------------ the defence
    def ere(self, x: torch.Tensor) -> torch.Tensor:
        """
        The expected reconstruction error of images ``x`` (the defence's layout, values in ``clip_values``), ``(N,)``
        in the denoiser's dtype; differentiable in ``x`` (a defence-aware attacker lowers it, see
        :class:`~art_purify.evaluation.ReconstructionAwarePGD`).
        """
        z = self._validated(x, "ere").to(module_dtype(self.denoiser))
        return torch.cat([self._ere_for(z[i : i + self.batch_size]) for i in range(0, z.shape[0], self.batch_size)])

    def trajectory(self, x: torch.Tensor) -> Dict[str, np.ndarray]:
        """
        The search without gradients, step by step, for inspection.

        :return: ``{"ere": (max_iter + 1, N), "distance": (max_iter + 1, N), "output": the search's output}``: the
                 ERE of the iterate and its ``norm`` distance to the input, from the input (row 0) to the output (last
                 row), and the output itself in the input's layout (what ``forward`` returns).
        """
        z_all = self._validated(x, "trajectory").detach().to(module_dtype(self.denoiser))
        chunks = [self._trajectory_of(z_all[i : i + self.batch_size]) for i in range(0, len(z_all), self.batch_size)]
        path = {k: torch.cat([c[k] for c in chunks], dim=1).cpu().numpy() for k in ("ere", "distance")}
        output = torch.cat([c["output"] for c in chunks])
        path["output"] = (output if self.channels_first else output.permute(0, 2, 3, 1)).cpu().numpy()
        return path

    def _trajectory_of(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        eres, distances = [], []

        def record(z: torch.Tensor) -> None:
            with torch.no_grad():
                eres.append(self._ere_for(z))
                delta = (z - x).flatten(1)
                distances.append(delta.abs().amax(1) if self.norm == "inf" else delta.norm(dim=1))

        output = self._search(x, record=record)
        return {"ere": torch.stack(eres), "distance": torch.stack(distances), "output": output}

    def _validated(self, x: torch.Tensor, method: str) -> torch.Tensor:
        network = self.unet if self.unet is not None else self.denoiser
        x_cf = validate_images(x, self.clip_values, self.channels_first, network, f"{type(self).__name__}.{method}")
        follow_device(self.denoiser, x.device)
        return x_cf

    def _ere_for(self, z: torch.Tensor) -> torch.Tensor:
        with frozen(self.denoiser):
            return self._ere_with(self.noise_draws(z.shape[1:], z.device, z.dtype), self.effective_sigma)(z)

    def _ere_with(self, noises: torch.Tensor, sigma: float):
        def ere(z: torch.Tensor) -> torch.Tensor:
            return expected_reconstruction_error(self.denoiser, to_model_space(z, self.clip_values), noises, sigma)

        return ere

    def _search(
        self, x: torch.Tensor, unrolled: int = 0, record: Optional[Callable[[torch.Tensor], None]] = None
    ) -> torch.Tensor:
        """The search from ``x``; its last ``unrolled`` steps keep their (twice-differentiable) graph, the steps
        before them pass the identity gradient on (``unrolled = max_iter``: the exact unrolled search)."""
        clip = (float(self.clip_values[0]), float(self.clip_values[1]))
        # everything the steps close over is made before the first (checkpointed) step
        ere = self._ere_with(self.noise_draws(x.shape[1:], x.device, x.dtype), self.effective_sigma)

        def step(z: torch.Tensor, x0: torch.Tensor, create_graph: bool) -> torch.Tensor:
            return sam_search_step(
                ere, z, x0, float(self.rho), float(self.step_size), float(self.radius), self.norm, clip, create_graph
            )

        block = frozen(self.denoiser)  # entered for the search and again for each recomputed step

        @contextlib.contextmanager
        def recomputation() -> Iterator[None]:  # a recomputed step runs in the backward pass, after this call
            with block, twice_differentiable_attention(self.denoiser):
                yield

        steps = int(self.max_iter)
        first_graph = steps - unrolled
        x0 = x if unrolled else x.detach()
        z = x.detach()
        recompute = unrolled > 0 and self.gradient_checkpointing  # the second-order graph is built in the backward
        attention = twice_differentiable_attention(self.denoiser) if unrolled and not recompute else None
        with block, attention or contextlib.nullcontext():
            if record is not None:
                record(z)
            for i in range(steps):
                graph = i >= first_graph
                if i == first_graph:  # the graph starts here: x itself, or the identity gradient of the steps before
                    z = x if i == 0 else straight_through(x, z)
                z = recomputed_step(step, z, x0, recomputation) if graph and recompute else step(z, x0, graph)
                if record is not None:
                    record(z)
        return z

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """
        Search from every input (values in ``clip_values``); differentiable as set by ``gradient``.

        :return: ``(searched, y)``: one output per input (the defence is deterministic: no EOT), ``y`` unchanged.
        """
        x_cf = self._validated(x, "forward")
        need_grad = torch.is_grad_enabled() and x.requires_grad
        work = x_cf.to(module_dtype(self.denoiser))
        steps = int(self.max_iter)
        unrolled = {"exact": steps, "truncated": min(int(self.unrolled_steps), steps)}.get(self.gradient, 0)
        outs = []
        chunks = range(0, work.shape[0], self.batch_size)
        for i in tqdm(chunks, desc=type(self).__name__, disable=not self.verbose or len(chunks) == 1):
            chunk = work[i : i + self.batch_size]
            if need_grad and unrolled > 0:
                outs.append(self._search(chunk, unrolled=unrolled))
            elif need_grad:  # bpda (or nothing unrolled)
                outs.append(straight_through(chunk, self._search(chunk)))
            else:
                outs.append(self._search(chunk))
        out = torch.cat(outs)
        if not self.channels_first:
            out = out.permute(0, 2, 3, 1)
        return out, y

    def estimate_forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Same as ``forward`` (ART calls it only through ``estimate_gradient`` for mixed numpy/torch chains)."""
        return self.forward(x, y)[0]
