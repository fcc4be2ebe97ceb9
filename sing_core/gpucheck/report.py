"""The GPU check's report: one JSON object (report.json) and the tables printed side by side."""

from __future__ import annotations

import json
from pathlib import Path


def verdicts(report: dict) -> dict:
    """What issue 18 asks of the figures: half-precision x̂0 within the promised tolerance (finite starts), our UNet
    no slower than diffusers', nothing held after release. None where a section did not run."""
    parity, speed, memory = report.get("parity"), report.get("speed"), report.get("memory")
    ours = [row for row in speed or [] if row["first"] == "ours"]
    return {
        "half_precision_within_tolerance": None if parity is None else all(row["within"] for row in parity),
        "ours_no_slower_than_diffusers": None if not ours else all(row["ratio"] <= 1.0 for row in ours),
        "nothing_held_after_release": None if memory is None else all(r["released"] for r in memory["release"]),
    }


def _fmt(value, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


def _parity_lines(rows: list[dict]) -> list[str]:
    lines = [
        ("parity: x̂0 against float32 (rms error / rms of the float32 x̂0); the start x̂0 + σ0·x1 at σ0 = 14.6 in the "
         "same dtype, its error in x̂0 units (rms, and the worst channel mean)"),
        (f"  {'module':<22} {'dtype':<9} {'w':>4} {'x̂0 err':>9} {'max |Δ|':>9} {'tol':>6} {'start σ/unit/VP rms':>20}"
         f" {'channel-mean error':>20}"
         f" {'finite':>7} {'ok':>4}"),
    ]
    for r in rows:
        starts = "/".join(_fmt(v, ".3f") for v in r["start_rel_rms"].values())
        means = "/".join(_fmt(v, ".0e") for v in r["start_mean_error"].values())
        finite = r["x0_finite"] and all(r["start_finite"].values())
        lines.append(
            f"  {r['module']:<22} {r['dtype']:<9} {r['guidance']:>4g} {r['x0_rel_rms']:>9.2e} {r['x0_max_abs']:>9.2e}"
            f" {r['tolerance']:>6g} {starts:>20} {means:>20} {finite!s:>7} {'yes' if r['within'] else 'NO':>4}"
        )
    return lines


def _speed_lines(rows: list[dict], dtype: str) -> list[str]:
    lines = [f"speed ({dtype}; medians over paired rounds, order alternating; ratio = median of per-round ratios)"]
    for r in rows:
        quartiles = "–".join(f"{q:.3f}" for q in r["ratio_quartiles"])
        extra = f", compile {r['compile_ms'] / 1000:.1f} s" if "compile_ms" in r else ""
        extra += f", max |Δ| {r['max_abs_difference']:.2g}" if "max_abs_difference" in r else ""
        lines.append(
            f"  {r['case']}: {r['first']} {r['first_ms']:.2f} ms, {r['second']} {r['second_ms']:.2f} ms, "
            f"{r['first']}/{r['second']} {r['ratio']:.3f} (quartiles {quartiles}, {r['rounds']} rounds{extra})"
        )
    return lines


def _forward_line(r: dict) -> str:
    note = f" ({r['note']})" if r["note"] else ""
    return (f"  {r['module']} {r['dtype']}, {r['latent']}: weights {_fmt(r['weights_mib'], '.0f')} MiB, forward peak "
            f"above them {_fmt(r['forward_peak_mib'], '.0f')} MiB{note}")


def _release_line(r: dict) -> str:
    held = "—" if r["held_bytes"] is None else f"{r['held_bytes']} bytes"
    return (f"  {r['module']} {r['dtype']}, '{r['policy']}': held after release {held}, tensors left on the device "
            f"{_fmt(r['tensors_left_on_device'], '')}, module freed {_fmt(r['module_freed'], '')}"
            f" -> {'released' if r['released'] else 'NOT released'}")


def _memory_lines(memory: dict) -> list[str]:
    return ["memory", *map(_forward_line, memory["forward"]), *map(_release_line, memory["release"])]


def _training_line(r: dict) -> str:
    return (f"  {r['module']}, batch {r['batch']} at {r['latent']}, gradient checkpointing "
            f"{'on ' if r['gradient_checkpointing'] else 'off'}: {r['samples_per_s']:.2f} samples/s "
            f"({r['step_ms']:.1f} ms/step, {r['timed_steps']} steps), peak {_fmt(r['peak_mib'], '.0f')} MiB, "
            f"loss finite {r['loss_finite']}")


def _training_lines(rows: list[dict]) -> list[str]:
    return ["training (the trainer's loop, bf16 autocast, AdamW)", *map(_training_line, rows)]


def render(report: dict) -> str:
    head = report["run"]
    lines = [
        (f"GPU check on {head['device']}: torch {head['torch']}, diffusers {head['diffusers']}, {head['mode']}, "
         f"{head['date']}"),
        f"command: {head['command']}",
    ]
    if report.get("parity") is not None:
        lines += _parity_lines(report["parity"])
    if report.get("speed") is not None:
        lines += _speed_lines(report["speed"], head["speed_dtype"])
    if report.get("memory") is not None:
        lines += _memory_lines(report["memory"])
    if report.get("training") is not None:
        lines += _training_lines(report["training"])
    for section, error in report.get("errors", {}).items():
        lines.append(f"{section}: FAILED: {error}")
    lines.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in report["verdicts"].items()))
    return "\n".join(lines)


def write(report: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "report.txt").write_text(render(report) + "\n", encoding="utf-8")
