"""The GPU check: one command, at most 8 minutes on one H100-class GPU, everything side by side.

    python -m benchmarks.gpu [--json gpu.json] [--budget-s 420] [--no-compile] [-v]

On the full SD 1.x architecture with random weights at 512 (speed does not depend on weight values),
in one process, it measures:

- the paper-preset fit of 10 points (5 restarts x 129 steps): the seed's schedule
  (`vidcorr.fit_reference`: batch 1, explicit attention, full UNet) and vidcorr (`vidcorr.fit`), in
  float32 and under float16 and bfloat16 autocast (float32 weights);
- tracking seconds per frame for 10 points at the `fast` (1 restart x 4 crops) and `paper` (5 x 20)
  presets (`vidcorr.track` over synthetic frames, after the reference frame);
- peak CUDA memory of every stage (torch.cuda.max_memory_allocated);
- the largest distance between the points located in float32 and under each autocast, from the
  same embeddings on the same image (model-space pixels at 512);
- a joint fit with K = 3 labels per point (`vidcorr.fit_labels`, the paper preset, 10 points on 3 frames)
  against three one-label fits of the same points (the first stage's figure);
- one JHMDB-sized video, 15 joints through 40 frames at 320x240, at the `paper` and the `fast` presets,
  each in the precision `--autocast auto` gives it on this GPU (`vidcorr.method.precision.auto_autocast`):
  the fit of the 15 points on frame 0, the tracking through the other frames, and the whole video's time;
- `LDM.compile()` on and off: its compile time, and the fit step and fast tracking it gives.

Time budget: `--budget-s` (420) for the whole run, model build included. Every stage first times
a short probe, then runs as much of its work as its cap (`CAPS_S`, scaled with the budget) and the
time left allow: the whole schedule when it fits, else a measured number of steps or frames (for
the seed's schedule, one point and one restart), extrapolated linearly and flagged `extrapolated`.
A stage whose estimate does not fit the time left is skipped and listed under `skipped` with its
estimate. The seed's schedule is never run in full (about 100x vidcorr's work); it runs points and
restarts one after another, so one point and restart extrapolate linearly up to noise. Tracking
time does not depend on how well embeddings were fitted, so tracking locates unfitted (N(0, 1))
embeddings of the right restart count.

It refuses to run without CUDA, in one line. It prints a table and writes the JSON report.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

MIB = 1024 * 1024
# The GPU targets.
TARGET_FIT_S = 60.0           # paper fit of 10 points, vidcorr under autocast
TARGET_SPEEDUP = 10.0         # vs the seed's schedule
TARGET_FAST_FPS = 10.0        # fast-preset tracking of 10 points at 512
TARGET_PEAK_GIB = 20.0
# torch.compile cannot be probed before it runs: a guess of its cost on a GPU (compile + timing).
COMPILE_ESTIMATE_S = 120.0
# What a stage's warm-up and probe need before it can size itself.
PROBE_ESTIMATE_S = 5.0
DEFAULT_BUDGET_S = 420.0  # 7 minutes, leaving one of the 8 for start-up and a compile that runs long
# Seconds each stage may take at the default budget (scaled with --budget-s), in the order they run;
# with the model build (about 20 s) they add up to about 370 s.
CAPS_S = {"fit_primary": 90.0, "fit_other": 15.0, "seed": 8.0, "track_fast": 15.0, "track_paper": 12.0,
          "labels_fit": 20.0, "video_fit": 10.0, "video_track": 8.0, "compile_fit": 25.0, "compile_track": 10.0}
# Caps are maxima: the primary fit takes less where the whole schedule runs faster (the 60 s target). The stages
# before the compile add up to 227 s at most; with the model build and the located differences (about 20 s
# each) and a warm-up and probe per stage (about 2 s each), about 295 s, which leaves the compile its estimate.
OVERHEADS_S = {"model_build": 20.0, "located_differences": 20.0, "probe_per_stage": 2.0}
LABELS_K = 3  # labels per point in the several-label stage


@dataclass(frozen=True)
class VideoSpec:
    """The JHMDB-sized video: `points` joints tracked through `frames` frames of `size_wh`, each preset in the
    precision named in `precisions` (float32, float16, bfloat16)."""

    points: int = 15
    frames: int = 40
    size_wh: tuple[int, int] = (320, 240)
    precisions: dict[str, str] = field(default_factory=lambda: {"paper": "float32", "fast": "bfloat16"})


def refuse_without_cuda() -> None:
    """Exit 2 with one line on stderr unless torch sees a CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        print(f"error: benchmarks.gpu needs a CUDA GPU and this torch ({torch.__version__}) sees none; "
              "use benchmarks.speed on a CPU", file=sys.stderr)
        raise SystemExit(2)


# --- the budget ------------------------------------------------------------------------------------
@dataclass
class Budget:
    """Seconds left of a wall-clock budget, and the stages skipped for want of them."""

    total_s: float
    clock: Callable[[], float] = time.perf_counter
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def left(self) -> float:
        return self.total_s - (self.clock() - self.started)

    def allow(self, stage: str, estimate_s: float, reserve_s: float = 0.0) -> bool:
        """True if `estimate_s` fits in the time left minus `reserve_s` (kept for later stages);
        otherwise record the stage as skipped."""
        left = self.left()
        if estimate_s <= left - reserve_s:
            return True
        self.skipped.append({"stage": stage, "estimate_s": round(estimate_s, 1), "left_s": round(left, 1),
                             "reserved_s": round(reserve_s, 1)})
        return False

    def slot(self, cap_s: float) -> float:
        """Seconds a stage may take: its cap, or the time left if that is less (>= 0)."""
        return max(0.0, min(cap_s, self.left()))


def units_that_fit(per_unit_s: float, wanted: int, slot_s: float, least: int = 1) -> int:
    """How many units (steps, frames) of `per_unit_s` to run in `slot_s`: all `wanted` if they fit,
    else as many as fit, at least `least`."""
    if per_unit_s <= 0:
        return wanted
    return int(max(least, min(wanted, math.floor(slot_s / per_unit_s))))


# --- stages -----------------------------------------------------------------------------------------
@dataclass
class Suite:
    """What the suite runs on: the model, inputs and sizes (the command's are in `main`)."""

    ldm: Any
    device: Any
    points: int = 10
    image_size: int = 512
    fit_steps: int = 129           # the paper schedule
    restarts: int = 5
    track_frames: dict[str, int] = field(default_factory=lambda: {"fast": 30, "paper": 4})
    autocasts: tuple[str, ...] = ("float16", "bfloat16")
    compile: bool = True
    labels: int = LABELS_K
    video: VideoSpec = field(default_factory=VideoSpec)
    caps_s: dict[str, float] = field(default_factory=lambda: dict(CAPS_S))
    log: Callable[[str], None] = lambda message: None


def _timed(fn: Callable[[], Any], device: Any) -> tuple[Any, float, float | None]:
    """(result, wall s, CUDA peak MiB or None) of one call."""
    from benchmarks.speed import timed

    result, sample = timed(lambda progress: fn(), device)
    return result, sample.wall_s, sample.cuda_peak_mib


def _variant(ldm: Any, autocast: str | None, compile_model: bool = False) -> Any:
    """The model as is (float32), or a copy with the same weights under autocast and/or compiled."""
    if autocast is None and not compile_model:
        return ldm
    from benchmarks.speed import configured_copy

    return configured_copy(ldm, SimpleNamespace(autocast=autocast or "none", compile=compile_model))


def _inputs(suite: Suite) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from benchmarks.speed import query_points, synthetic_image

    size = suite.image_size
    width, height = size * 4 // 3, size
    return (synthetic_image(height, width, seed=1), synthetic_image(height, width, seed=2),
            query_points(suite.points, width, height, seed=0))


@dataclass
class Steps:
    """A fit run for `steps` of the schedule's steps: what it returned, its wall time and CUDA peak."""

    steps: int
    result: Any
    wall_s: float
    cuda_peak_mib: float | None


def run_steps(suite: Suite, budget: Budget, stage: str, slot_s: float, fit: Callable[[int], Any]) -> Steps | None:
    """Warm up (1 step), probe (2 steps), then run as many of the schedule's steps as the slot holds (at least 2);
    None, recorded as skipped, where even the probe does not fit."""
    if not budget.allow(stage, PROBE_ESTIMATE_S):
        return None
    fit(1)  # warm-up: kernels, cuBLAS, autotuning
    _, probe_s, _ = _timed(lambda: fit(2), suite.device)
    steps = units_that_fit(probe_s / 2, suite.fit_steps, min(slot_s, budget.left()), least=2)
    result, wall, peak = _timed(lambda: fit(steps), suite.device)
    return Steps(steps, result, wall, peak)


def measure_fit(suite: Suite, budget: Budget, model: Any, label: str, reference: bool,
                slot_s: float) -> dict[str, Any] | None:
    """One fit configuration: probe, then the schedule (or as many steps as fit), per 10 points."""
    import vidcorr
    from vidcorr import Config

    image, _, points = _inputs(suite)
    fit = vidcorr.fit_reference if reference else vidcorr.fit
    # The seed's schedule runs points and restarts one after another: measure one of each.
    run_points = points[:1] if reference else points
    samples = 1 if reference else suite.restarts
    cfg = Config(image_size=suite.image_size, restarts=1 if reference else suite.restarts)
    ran = run_steps(suite, budget, f"fit {label}", slot_s,
                    lambda steps: fit(model, image, run_points, cfg.replace(num_steps=steps)))
    if ran is None:
        return None
    steps, embeddings, wall, peak = ran.steps, ran.result, ran.wall_s, ran.cuda_peak_mib
    scale = (suite.fit_steps / steps) * (suite.points * suite.restarts / (len(run_points) * samples))
    result = {"steps_run": steps, "points_run": len(run_points), "restarts_run": samples, "wall_s": wall,
              "per_step_s": wall / steps, "paper_fit_10_points_s": wall * scale,
              "extrapolated": scale != 1.0, "cuda_peak_mib": peak}
    suite.log(f"fit {label}: {result}")
    return {"result": result, "embeddings": embeddings}


def measure_track(suite: Suite, budget: Budget, model: Any, preset: str, slot_s: float) -> dict[str, Any] | None:
    """Seconds per frame of vidcorr.track for the points at `preset`, after a one-frame warm-up."""
    import torch

    import vidcorr
    from benchmarks.speed import synthetic_image
    from vidcorr import Config, Embeddings

    image, _, points = _inputs(suite)
    cfg = Config.preset(preset, image_size=suite.image_size)
    if not budget.allow(f"track {preset}", PROBE_ESTIMATE_S):
        return None
    tensors = torch.randn(suite.points, cfg.restarts, cfg.num_tokens, model.context_dim,
                          generator=torch.Generator().manual_seed(0))
    embeddings = Embeddings(tensors, points, (image.shape[1], image.shape[0]), cfg.at_size(suite.image_size),
                            model.model_id, model.fingerprint(), np.zeros(suite.points, dtype=np.int64))
    wanted = suite.track_frames[preset]
    frames = [image] + [synthetic_image(image.shape[0], image.shape[1], seed=10 + i) for i in range(wanted)]

    def run(count: int) -> Any:
        return vidcorr.track(model, frames[:count + 1], cfg=cfg, embeddings=embeddings)

    run(1)  # warm-up
    _, probe_s, _ = _timed(lambda: run(1), suite.device)
    count = units_that_fit(probe_s, wanted, min(slot_s, budget.left()), least=1)
    _, wall, peak = _timed(lambda: run(count), suite.device)
    result = {"frames": count, "wall_s": wall, "per_frame_s": wall / count, "frames_per_s": count / wall,
              "points": suite.points, "cuda_peak_mib": peak}
    suite.log(f"track {preset}: {result}")
    return result


def measure_labels(suite: Suite, budget: Budget, model: Any, slot_s: float,
                   one_label_fit_s: float | None) -> dict[str, Any] | None:
    """The joint fit with `suite.labels` labels per point (label k of every point on frame k), the paper
    schedule's steps or as many as fit, extrapolated to the whole schedule; against `labels` one-label fits
    (`one_label_fit_s`: the paper fit of the same points, from the first stage)."""
    from benchmarks.speed import LABELS_MISSING, find_fit_labels, label_set, synthetic_image
    from vidcorr import Config

    stage = f"fit {suite.labels} labels"
    fit_labels = find_fit_labels()
    if fit_labels is None:
        budget.skipped.append({"stage": stage, "reason": LABELS_MISSING})
        return None
    image, _, points = _inputs(suite)
    frames = {t: image if t == 0 else synthetic_image(image.shape[0], image.shape[1], seed=20 + t)
              for t in range(suite.labels)}
    labels = label_set(points, suite.labels)
    cfg = Config(image_size=suite.image_size, restarts=suite.restarts)
    ran = run_steps(suite, budget, stage, slot_s,
                    lambda steps: fit_labels(model, frames, labels, cfg.replace(num_steps=steps)))
    if ran is None:
        return None
    schedule_s = ran.wall_s * suite.fit_steps / ran.steps
    result = {"labels": suite.labels, "points": suite.points, "restarts": suite.restarts, "steps_run": ran.steps,
              "wall_s": ran.wall_s, "per_step_s": ran.wall_s / ran.steps, "paper_fit_s": schedule_s,
              "extrapolated": ran.steps != suite.fit_steps, "cuda_peak_mib": ran.cuda_peak_mib,
              "one_label_fit_s": one_label_fit_s,
              "over_k_one_label_fits": None if one_label_fit_s is None else schedule_s / (suite.labels
                                                                                         * one_label_fit_s)}
    suite.log(f"fit {suite.labels} labels: {result}")
    return result


def measure_video(suite: Suite, budget: Budget, model: Any, preset: str,
                  caps: dict[str, float]) -> dict[str, Any] | None:
    """The JHMDB-sized video at `preset`: the fit of its points on frame 0 (the schedule's steps or as many as
    fit) and tracking through the frames after it (all or as many as fit), each extrapolated to the whole."""
    import vidcorr
    from benchmarks.speed import query_points, synthetic_image
    from vidcorr import Config

    spec = suite.video
    width, height = spec.size_wh
    cfg = Config.preset(preset, image_size=suite.image_size)
    frames = [synthetic_image(height, width, seed=100 + t) for t in range(spec.frames)]
    points = query_points(spec.points, width, height, seed=0)
    fitted = run_steps(suite, budget, f"video {preset} fit", budget.slot(caps["video_fit"]),
                       lambda steps: vidcorr.fit(model, frames[0], points, cfg.replace(num_steps=steps),
                                                 frames=np.zeros(spec.points, dtype=np.int64)))
    if fitted is None:
        return None
    fit_s = fitted.wall_s * suite.fit_steps / fitted.steps
    wanted = spec.frames - 1
    entry: dict[str, Any] = {
        "precision": spec.precisions[preset], "points": spec.points, "frames": spec.frames, "size": [width, height],
        "fit": {"steps_run": fitted.steps, "wall_s": fitted.wall_s, "schedule_s": fit_s,
                "cuda_peak_mib": fitted.cuda_peak_mib},
    }
    if not budget.allow(f"video {preset} track", PROBE_ESTIMATE_S):
        return entry

    def track(count: int) -> Any:
        return vidcorr.track(model, frames[:count + 1], cfg=cfg, embeddings=fitted.result)

    track(1)  # warm-up
    _, probe_s, _ = _timed(lambda: track(1), suite.device)
    count = units_that_fit(probe_s, wanted, min(budget.slot(caps["video_track"]), budget.left()), least=1)
    _, wall, peak = _timed(lambda: track(count), suite.device)
    per_frame = wall / count
    entry["track"] = {"frames_run": count, "wall_s": wall, "per_frame_s": per_frame, "cuda_peak_mib": peak}
    entry["video_s"] = fit_s + per_frame * wanted
    entry["frames_per_s"] = spec.frames / entry["video_s"]
    entry["extrapolated"] = fitted.steps != suite.fit_steps or count != wanted
    suite.log(f"video {preset}: {entry}")
    return entry


def located_difference(suite: Suite, fp32: Any, other: Any, embeddings: Any) -> dict[str, Any]:
    """Largest distance (model-space px) between the points fp32 and `other` locate from the same
    embeddings on the same image, at the embeddings' own config (paper locate: 20 crops)."""
    import vidcorr

    _, target, _ = _inputs(suite)
    a = vidcorr.locate(fp32, target, embeddings)
    b = vidcorr.locate(other, target, embeddings)
    distance = np.sqrt(((a.points_model - b.points_model) ** 2).sum(axis=1))
    return {"max_px": float(distance.max()), "mean_px": float(distance.mean()),
            "points_differing_over_1px": int((distance > 1).sum())}


def run_suite(suite: Suite, budget: Budget, scale: float = 1.0) -> dict[str, Any]:
    """Every stage in priority order, each within its cap (CAPS_S x `scale`) and the time left;
    returns the report body, `skipped` included."""
    report: dict[str, Any] = {"fit": {}, "track": {}, "located_difference_px": {}, "labels": None, "video": {},
                              "compile": None}
    caps = {name: cap * scale for name, cap in suite.caps_s.items()}
    ldm = suite.ldm
    primary = suite.autocasts[0] if suite.autocasts else None
    models = {"float32": ldm}
    for name in suite.autocasts:
        models[name] = _variant(ldm, name)
    order = ([primary] if primary else []) + ["float32"] + [name for name in suite.autocasts if name != primary]
    fitted: dict[str, Any] = {}

    # 1. vidcorr's paper fit, the primary autocast first (the 60 s target), then float32 and the rest.
    for i, precision in enumerate(order):
        cap = caps["fit_primary"] if i == 0 else caps["fit_other"]
        out = measure_fit(suite, budget, models[precision], f"vidcorr {precision}", False, budget.slot(cap))
        if out is not None:
            report["fit"][f"vidcorr_{precision}"] = out["result"]
            fitted[precision] = out["embeddings"]
    # 2. the seed's schedule, one point and restart, in the same precisions.
    for precision in order:
        out = measure_fit(suite, budget, models[precision], f"seed {precision}", True, budget.slot(caps["seed"]))
        if out is not None:
            report["fit"][f"seed_{precision}"] = out["result"]
    # 3. tracking at both presets, in the primary precision (what the CLI runs on CUDA).
    tracker = models[primary or "float32"]
    for preset in ("fast", "paper"):
        result = measure_track(suite, budget, tracker, preset, budget.slot(caps[f"track_{preset}"]))
        if result is not None:
            report["track"][preset] = result
    # 4. float32 vs autocast located points, from float32's embeddings.
    if "float32" in fitted:
        for precision in suite.autocasts:
            if budget.allow(f"located difference {precision}", 10.0 * scale):
                report["located_difference_px"][precision] = located_difference(
                    suite, ldm, models[precision], fitted["float32"])
    # 5. the joint fit on K labels per point, in the primary precision, against K one-label fits.
    one_label = report["fit"].get(f"vidcorr_{primary or 'float32'}", {}).get("paper_fit_10_points_s")
    report["labels"] = measure_labels(suite, budget, tracker, budget.slot(caps["labels_fit"]), one_label)
    # 6. the JHMDB-sized video at each preset, in the precision --autocast auto gives that preset here.
    for preset, precision in suite.video.precisions.items():
        model = models.get(precision) or _variant(ldm, None if precision == "float32" else precision)
        models[precision] = model
        video = measure_video(suite, budget, model, preset, caps)
        if video is not None:
            report["video"][preset] = video
    # 7. torch.compile: the first calls compile; then a fit and fast tracking beside the uncompiled ones.
    if not suite.compile:
        budget.skipped.append({"stage": "compile", "reason": "--no-compile"})
    elif budget.allow("compile", COMPILE_ESTIMATE_S * scale):
        compiled = _variant(ldm, primary, compile_model=True)
        start = time.perf_counter()
        entry: dict[str, Any] = {}
        out = measure_fit(suite, budget, compiled, f"vidcorr {primary or 'float32'} compiled", False,
                          budget.slot(caps["compile_fit"]))
        entry["fit_total_s"] = time.perf_counter() - start
        if out is not None:
            entry["fit"] = out["result"]
        track = measure_track(suite, budget, compiled, "fast", budget.slot(caps["compile_track"]))
        if track is not None:
            entry["track_fast"] = track
        report["compile"] = entry
    report["skipped"] = budget.skipped
    report["targets"] = targets(report, primary or "float32")
    return report


def targets(report: dict[str, Any], precision: str) -> dict[str, Any]:
    """The issue's GPU targets against what was measured (None where the stage was skipped)."""
    fit = report["fit"].get(f"vidcorr_{precision}", {}).get("paper_fit_10_points_s")
    seed = report["fit"].get(f"seed_{precision}", {}).get("paper_fit_10_points_s")
    fps = report["track"].get("fast", {}).get("frames_per_s")
    peaks = [entry.get("cuda_peak_mib") for group in (report["fit"], report["track"]) for entry in group.values()]
    peak = max((p for p in peaks if p is not None), default=None)
    speedup = None if fit is None or seed is None else seed / fit

    def verdict(value: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if value is None else bool(ok(value))

    return {
        "precision": precision,
        "paper_fit_10_points_s": fit, "fit_met": verdict(fit, lambda v: v <= TARGET_FIT_S),
        "speedup_vs_seed": speedup, "speedup_met": verdict(speedup, lambda v: v >= TARGET_SPEEDUP),
        "fast_track_frames_per_s": fps, "fps_met": verdict(fps, lambda v: v >= TARGET_FAST_FPS),
        "peak_gib": None if peak is None else peak / 1024,
        "peak_met": verdict(peak, lambda v: v / 1024 <= TARGET_PEAK_GIB),
    }


# --- report -----------------------------------------------------------------------------------------
def format_report(report: dict[str, Any]) -> str:
    from benchmarks.speed import _fmt, _table

    lines = [f"vidcorr GPU check: {report['machine'].get('gpu', report['machine']['device'])}, SD 1.x random "
             f"weights at {report['settings']['image_size']}, {report['settings']['points']} points, "
             f"{report['wall_s']:.0f} s of a {report['settings']['budget_s']:.0f} s budget"]
    rows = []
    for name, r in report["fit"].items():
        star = "*" if r["extrapolated"] else ""
        rows.append((f"fit {name.replace('_', ' ')}", _fmt(r["per_step_s"]),
                     f"{_fmt(r['paper_fit_10_points_s'])}{star}", _fmt(r["cuda_peak_mib"], ".0f"),
                     f"{r['steps_run']} steps x {r['points_run']} pts"))
    for preset, r in report["track"].items():
        rows.append((f"track {preset}", _fmt(r["per_frame_s"]), f"{_fmt(r['frames_per_s'])} frames/s",
                     _fmt(r["cuda_peak_mib"], ".0f"), f"{r['frames']} frames"))
    compiled = report.get("compile") or {}
    if "fit" in compiled:
        r = compiled["fit"]
        rows.append(("fit compiled", _fmt(r["per_step_s"]), _fmt(r["paper_fit_10_points_s"]) + "*" * r["extrapolated"],
                     _fmt(r["cuda_peak_mib"], ".0f"), f"first call + timing {compiled['fit_total_s']:.0f} s"))
    if "track_fast" in compiled:
        r = compiled["track_fast"]
        rows.append(("track fast compiled", _fmt(r["per_frame_s"]), f"{_fmt(r['frames_per_s'])} frames/s",
                     _fmt(r["cuda_peak_mib"], ".0f"), f"{r['frames']} frames"))
    if rows:
        lines.append(_table(("stage", "s/step or s/frame", "paper fit of 10 points (s)", "CUDA peak MiB", "measured"),
                            rows))
    labels = report.get("labels")
    if labels:
        star = "*" if labels["extrapolated"] else ""
        lines.append(f"fit with {labels['labels']} labels per point ({labels['points']} points, paper schedule): "
                     f"{_fmt(labels['paper_fit_s'])}{star} s, {_fmt(labels['per_step_s'])} s/step, "
                     f"{_fmt(labels['over_k_one_label_fits'])}x {labels['labels']} one-label fits "
                     f"({_fmt(labels['one_label_fit_s'])} s each); CUDA peak "
                     f"{_fmt(labels['cuda_peak_mib'], '.0f')} MiB")
    video_rows = []
    for preset, v in report.get("video", {}).items():
        track = v.get("track", {})
        star = "*" if v.get("extrapolated", True) else ""
        video_rows.append((preset, v["precision"], f"{_fmt(v.get('video_s'))}{star}", _fmt(v["fit"]["schedule_s"]),
                           _fmt(track.get("per_frame_s")), _fmt(v.get("frames_per_s")),
                           f"{v['fit']['steps_run']} steps, {track.get('frames_run', 0)} frames"))
    if video_rows:
        spec = next(iter(report["video"].values()))
        lines.append(f"JHMDB-sized video: {spec['points']} points, {spec['frames']} frames at "
                     f"{spec['size'][0]}x{spec['size'][1]}")
        lines.append(_table(("preset", "precision", "video s", "fit s", "track s/frame", "frames/s", "measured"),
                            video_rows))
    for precision, d in report["located_difference_px"].items():
        lines.append(f"float32 vs {precision} located points: max {d['max_px']:.3g} px, mean {d['mean_px']:.3g} px, "
                     f"{d['points_differing_over_1px']} over 1 px")
    t = report["targets"]

    def mark(ok: bool | None) -> str:
        return "not measured" if ok is None else "met" if ok else "MISSED"

    lines.append(f"targets ({t['precision']}): paper fit of 10 points {_fmt(t['paper_fit_10_points_s'])} s <= "
                 f"{TARGET_FIT_S:.0f}: {mark(t['fit_met'])}; vs seed {_fmt(t['speedup_vs_seed'])}x >= "
                 f"{TARGET_SPEEDUP:.0f}: {mark(t['speedup_met'])}; fast tracking {_fmt(t['fast_track_frames_per_s'])}"
                 f" frames/s >= {TARGET_FAST_FPS:.0f}: {mark(t['fps_met'])}; peak {_fmt(t['peak_gib'])} GiB <= "
                 f"{TARGET_PEAK_GIB:.0f}: {mark(t['peak_met'])}")
    lines.append("* extrapolated linearly from the steps (and, for the seed, the one point and restart) measured")
    for skip in report["skipped"]:
        why = skip.get("reason") or f"estimate {skip['estimate_s']} s, {skip['left_s']} s left"
        lines.append(f"skipped: {skip['stage']} ({why})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"wall-clock budget of the whole run, model build included ({DEFAULT_BUDGET_S:.0f})")
    parser.add_argument("--points", type=int, default=10, help="query points (10)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile stage")
    parser.add_argument("--json", default="gpu.json", help="report path (gpu.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage to stderr")
    args = parser.parse_args(argv)
    if args.points < 1 or args.budget_s <= 0:
        parser.error("--points must be >= 1 and --budget-s > 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    refuse_without_cuda()  # before anything is built
    import json

    import torch

    from benchmarks.speed import _json_default, machine_info
    from vidcorr import LDM
    from vidcorr.io.atomic import atomic_path
    from vidcorr.method.precision import auto_autocast

    budget = Budget(args.budget_s)
    device = torch.device("cuda")
    ldm = LDM.random_architecture("sd14", seed=0, device=device)
    log = (lambda message: print(message, file=sys.stderr, flush=True)) if args.verbose else (lambda message: None)
    # Each preset of the video stage in the precision `--autocast auto` gives it on this GPU.
    precisions = {preset: str(auto_autocast("cuda", preset) or torch.float32).removeprefix("torch.")
                  for preset in ("paper", "fast")}
    suite = Suite(ldm, device, points=args.points, compile=not args.no_compile, log=log,
                  video=VideoSpec(precisions=precisions))
    body = run_suite(suite, budget, scale=args.budget_s / DEFAULT_BUDGET_S)
    report = {"benchmark": "benchmarks.gpu", "command": " ".join(["python -m benchmarks.gpu", *(argv or sys.argv[1:])]),
              "machine": machine_info(device), "settings": {"budget_s": args.budget_s, "points": args.points,
                                                            "image_size": suite.image_size, "arch": "sd14"},
              "wall_s": budget.total_s - budget.left(), **body}
    print(format_report(report))
    with atomic_path(args.json) as out, open(out, "w") as f:
        json.dump(report, f, indent=2, default=_json_default)
    return report


if __name__ == "__main__":
    main()
