# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Reports of the evaluation suite: a terminal table, a JSON file that loads back, and a PNG figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from art_purify.evaluation.attacks import defences_of
from art_purify.evaluation.results import EvaluationReport

REPORT_VERSION = 3


def format_table(rows: List[Dict[str, object]]) -> str:
    """A fixed-width text table from dicts with the same keys."""
    headers = list(rows[0])
    cells = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([line, sep, *body])


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary_table(report: EvaluationReport, defence_name: str = "") -> str:
    """
    One row per attack, then the per-example worst case; sanity warnings listed below the table.

    Columns: ``accuracy`` (majority vote over ``votes`` purifications); for a random defence also ``all votes``
    (N-evaluation: correct in every one of the purifications, the figure an attacker who may resubmit faces); with
    a DW-box attack, ``fixed noise`` (its success judged with the noise fixed, as the attacker saw it).
    """
    s = report.settings
    eot = f" EOT{s['eot']}" if s["eot"] > 1 else ""
    cascade = s.get("cascade", False)
    n_eval = report.random_defence and s["votes"] > 1
    dw_box = any(o.fixed_noise_accuracy is not None for o in report.attacks.values())

    def row(attack: str, accuracy: float, all_votes: float, fixed: Optional[float], time: str) -> Dict[str, object]:
        out: Dict[str, object] = {
            "defence": defence_name,
            "attack": attack,
            "n": report.n,
            "votes": s["votes"],
            "accuracy": _pct(accuracy) + (" (cumulative)" if cascade and attack != "none (clean)" else ""),
        }
        if n_eval:
            out["all votes"] = _pct(all_votes)
        if dw_box:
            out["fixed noise"] = "" if fixed is None else _pct(fixed)
        out["time"] = time
        return out

    rows = [row("none (clean)", report.clean_accuracy, report.clean_all_votes_accuracy, None, "")]
    for name, outcome in report.attacks.items():
        budget = f"eps={s['eps_l2']:g}" if name == "pgd-l2" else f"eps={s['eps']:g}"
        if name == "square":
            detail = f"{budget} q{s['square_queries']}"
        elif name in ("pgd-dw", "apgd-dw"):
            detail = f"{budget} x{s['max_iter']}" + (f" R{s['restarts']}" if s["restarts"] else "")
        else:
            detail = f"{budget} x{s['max_iter']}{eot}" + (f" R{s['restarts']}" if s["restarts"] else "")
        if outcome.attacked is not None:
            detail += f" (ran on {sum(outcome.attacked)})"
        rows.append(
            row(
                f"{outcome.label} {detail}",
                outcome.robust_accuracy,
                outcome.all_votes_accuracy,
                outcome.fixed_noise_accuracy,
                f"{outcome.time_s:.0f}s",
            )
        )
    rows.append(
        row(
            "worst case over all attacks",
            report.robust_accuracy,
            report.robust_all_votes_accuracy,
            None,
            f"{report.time_s:.0f}s",
        )
    )
    rows[-1]["accuracy"] = _pct(report.robust_accuracy)
    lines = [format_table(rows)]
    if report.checks:
        passed = sum(c.passed is True for c in report.checks)
        lines.append(
            f"sanity checks: {passed} passed, {len(report.warnings)} warnings, "
            f"{sum(c.passed is None for c in report.checks)} not applicable"
        )
        for check in report.warnings:
            lines.append(f"WARNING [{check.name}] {check.detail}")
    return "\n".join(lines)


def save_report(report: EvaluationReport, path: Union[str, Path], extra: Optional[Dict] = None) -> Path:
    """Write the JSON report (settings, seed, versions, per-example outcomes; ``extra`` merged in at the top)."""
    import art

    from art_purify import __version__
    from art_purify.utils import machine_description

    data = {
        "report_version": REPORT_VERSION,
        **(extra or {}),
        "versions": {
            "art_purify": __version__,
            "art": art.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "machine": machine_description(),
        "evaluation": report.to_json(),
    }
    path = Path(path)
    path.write_text(json.dumps(_no_nan(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _no_nan(value):
    """Strict JSON: NaN (the vote margin of an example an attack did not run on) becomes ``null``."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def load_report(path: Union[str, Path]) -> Dict:
    """Load a JSON report written by :func:`save_report`; raises ``ValueError`` on a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no report at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a JSON report: {err}") from err
    if not isinstance(data, dict) or "evaluation" not in data or "per_example" not in data["evaluation"]:
        raise ValueError(f"{path} is not an art_purify evaluation report (no evaluation.per_example).")
    return data


def _purified(defence, x: np.ndarray) -> np.ndarray:
    """One purification of ``x`` through ART's numpy path (``PreprocessorPyTorch.__call__``, no gradients)."""
    return defence(x)[0]


def _trajectory(defence, x: np.ndarray) -> dict:
    """The search trajectory of ``x`` (numpy) on the device the defence's denoiser lives on."""
    import torch

    params = list(defence.denoiser.parameters())
    device = params[0].device if params else torch.device("cpu")
    return defence.trajectory(torch.from_numpy(np.ascontiguousarray(x)).to(device))


def _plot_trajectory(ax, trajectory: dict) -> None:
    steps = np.arange(trajectory["ere"].shape[0])
    for k, (label, colour) in enumerate((("clean", "C0"), ("adversarial", "C3"))):
        ax.plot(steps, trajectory["ere"][:, k], "o-", ms=3, color=colour, label=label)
    ax.set_xlabel("search step", fontsize=7)
    ax.set_title("ERE along the search", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def _show(ax, image: np.ndarray, title: str, cmap="gray", vmin=0.0, vmax=1.0):
    image = np.asarray(image)
    image = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
    shown = ax.imshow(image, cmap=cmap if image.ndim == 2 else None, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def save_figure(
    report: EvaluationReport,
    classifier: Any,
    x: np.ndarray,
    path: Union[str, Path],
    class_names: Optional[Sequence[str]] = None,
    n_examples: int = 4,
    title: str = "",
) -> Path:
    """
    A PNG figure: for a few examples (those the attacks broke first) the clean image, the adversarial image of the
    first attack that broke it, the perturbation, the purified adversarial image and, for a defence that exposes them,
    the heterogeneous defence's saliency mask and noise-level map, or the reconstruction search's purified clean image
    and the ERE along its search (clean and adversarial input); beside them, accuracy against eps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.attacks)
    labels = np.asarray(report.labels)
    robust = np.asarray(report.robust)
    order = np.concatenate(
        [
            np.flatnonzero(np.asarray(report.clean_correct) & ~robust),
            np.flatnonzero(robust),
            np.flatnonzero(~np.asarray(report.clean_correct)),
        ]
    )[:n_examples]
    lo, hi = report.settings["clip_values"]

    def name_of(c: int) -> str:
        if c < 0:
            return "(not attacked)"
        return class_names[c] if class_names is not None else str(c)

    def adversarial(i: int):
        for name in names:
            outcome = report.attacks[name]
            if not outcome.robust[i] and (outcome.attacked is None or outcome.attacked[i]):
                return name, report.x_adv[name][i]
        return names[0], report.x_adv[names[0]][i]

    defence = next(iter(defences_of(classifier)), None)
    has_maps = defence is not None and hasattr(defence, "saliency_mask") and hasattr(defence, "noise_level_map")
    has_search = defence is not None and hasattr(defence, "trajectory")
    columns = (
        ["clean", "adversarial", "perturbation"]
        + (["purified clean"] if has_search else [])
        + (["purified adv."] if defence is not None else [])
        + (["saliency mask", "noise level t"] if has_maps else [])
        + (["ERE trajectory"] if has_search else [])
    )
    rows = max(len(order), 1)
    fig = plt.figure(figsize=(2.0 * len(columns) + 4.5, 2.1 * rows + 0.6))
    grid = fig.add_gridspec(rows, len(columns) + 2)
    for r, i in enumerate(order):
        name, x_adv = adversarial(int(i))
        batch = np.stack([x[i], x_adv]).astype(np.float32)
        panels = [
            (x[i], f"clean (true {name_of(labels[i])})\npredicted {name_of(report.clean_prediction[i])}"),
            (x_adv, f"adversarial ({name})\npredicted {name_of(report.attacks[name].prediction[i])}"),
        ]
        delta = x_adv - x[i]
        scale = max(float(np.abs(delta).max()), 1e-12)
        panels.append((delta / (2 * scale) + 0.5, f"perturbation (max {scale:.3g})"))
        search = _trajectory(defence, batch) if has_search else None  # its output is the search's purification
        if search is not None:
            panels.append((search["output"][0], "purified clean"))
        if defence is not None:
            purified_adv = search["output"][1] if search is not None else _purified(defence, batch[1:])[0]
            panels.append((purified_adv, "purified adversarial"))
        for c, (image, text) in enumerate(panels):
            _show(fig.add_subplot(grid[r, c]), (image - lo) / (hi - lo) if c != 2 else image, text)
        if has_maps and defence is not None:
            mask = np.asarray(defence.saliency_mask(batch[1:]))[0]
            level = np.asarray(defence.noise_level_map(batch[1:]))[0]
            _show(
                fig.add_subplot(grid[r, len(panels)]), mask, f"saliency mask\n(white: {100 * mask.mean():.0f}% salient)"
            )
            t_max = max(float(getattr(defence, "t_high", level.max())), 1.0)
            level_ax = fig.add_subplot(grid[r, len(panels) + 1])
            shown = _show(level_ax, level, "noise level t", cmap="magma", vmin=0.0, vmax=t_max)
            colour_bar = fig.colorbar(shown, ax=level_ax, fraction=0.046, pad=0.04, ticks=np.unique(level)[:4])
            colour_bar.ax.tick_params(labelsize=7)
        if search is not None:
            _plot_trajectory(fig.add_subplot(grid[r, len(panels)]), search)
    ax = fig.add_subplot(grid[:, len(columns) :])
    if report.eps_curve:
        eps = [p["eps"] for p in report.eps_curve]
        acc = [100 * p["robust_accuracy"] for p in report.eps_curve]
        ax.plot(eps, acc, "o-", label=f"{report.eps_curve[0]['attack']} on first {report.eps_curve[0]['n']}")
    ax.plot(
        [0.0, report.settings["eps"]],
        [100 * report.clean_accuracy, 100 * report.robust_accuracy],
        "s",
        color="C3",
        label=f"all attacks, n={report.n}",
    )
    ax.set_xlabel("l_inf eps")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("accuracy against eps", fontsize=9)
    warnings = report.warnings
    fig.suptitle(
        (title + "  " if title else "")
        + (
            f"{len(warnings)} sanity warning(s): " + ", ".join(c.name for c in warnings)
            if warnings
            else "sanity checks: no warnings" if report.checks else ""
        ),
        fontsize=10,
        color="C3" if warnings else "black",
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
