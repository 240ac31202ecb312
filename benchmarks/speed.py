"""The seed's schedule against vidcorr's fast path: time, peak memory and agreement, side by side.

    python -m benchmarks.speed [--arch tiny|sd14] [--points 4] [--restarts 1] [--steps 1] [--crops 5]
                               [--image-size 512] [--repeats 3] [--device auto] [--dtype float32]
                               [--max-batch N] [--what fit,locate] [--fast-levers LEVERS] [--json out.json]
    python -m benchmarks.speed --breakdown [--arch ...] [--batches 1,4] [--pieces 'vae*,*stop*'] ...
    python -m benchmarks.speed --variants fp32,bf16[,bf16+unet_cl,...] [--arch ...] [--points 4] [--steps 1] ...
    python -m benchmarks.speed --labels 1,2,4 [--arch ...] [--points 4] [--restarts 1] [--steps 1] ...
    python -m benchmarks.speed --quick [any mode]         # seconds on the tiny model: checks the harness

Comparison mode runs, in one process and alternating (reference, fast, reference, fast, ...), the
reference path (`vidcorr.fit_reference` / `vidcorr.locate_reference`: the seed's schedule, one
point and restart at a time at batch 1, a VAE encode per step, the full UNet with explicit attention
everywhere) and the fast path (`vidcorr.fit` / `vidcorr.locate`), on the same model, image, points
and config. It reports the median over `--repeats` of wall time and process CPU time (under load
CPU time drifts less than wall time, but it still counts threads spinning at barriers), the load
average after each call, peak memory per call (VmHWM, reset before each call through
/proc/self/clear_refs; CUDA max allocated on cuda), the fast / reference ratios, and the largest
distance between the two paths' located points in model-space pixels (each path locates the
embeddings it fitted itself, so fit and locate are compared end to end).

Extrapolations, all linear and flagged in the output: fit time per keypoint for the paper schedule
(5 restarts x 129 steps) from the measured time per sample and step; locate time per frame and point
for the paper preset (5 restarts x 20 crops) and the fast preset (1 restart x 4 crops) from the
measured per-crop-iteration times. The first four locate iterations crop the corners, which the
fast path encodes once for all samples; later iterations need up to one encode per sample, so
`--crops 5` or more measures both kinds. With fewer crops the later iterations are assumed to cost
what the corner ones did, which flatters the fast path (its figure is then a lower bound).

Breakdown mode times the pieces of one step on the chosen architecture at each `--batches` size:
VAE encode (as is, under inference_mode, with channels_last and with contiguous weights, without oneDNN), UNet
forward
(explicit attention everywhere and full, as the reference; fused SDPA and full; fused and stopped
after the deepest captured layer; that with channels_last), forward with autograd plus backward for
the reference and the fast configurations (the fast one also with channels_last and without
oneDNN), and the one-off cost of converting the VAE and the UNet to channels_last. Pieces are timed
round-robin, one of each per repeat; the reference configuration at batch 1 only, as the seed runs.

Variants mode times the fast path alone (`vidcorr.fit` for `--steps` steps, `vidcorr.locate` for `--crops`
crops) under each variant of `--variants` in turn, alternating within each repeat, on one model: a precision
(`fp32`; `bf16`, `fp16`: torch.autocast with float32 weights) and optional weight layouts for the UNet and
the VAE (`+unet_cl`, `+unet_nchw`, `+vae_cl`, `+vae_nchw`; unnamed modules stay as vidcorr leaves them: the
VAE in channels_last on a CPU, the UNet contiguous). Each variant's state is set before its calls and put
back after them, outside the timing (a library default would convert once, at load). Against the first
variant it reports the time per fit step and per locate crop, the paired ratios, the largest embedding
difference and the largest and mean distance between located points (each variant locates what it fitted:
end to end), and whether the variant pays: faster everywhere measured, with identical points for float32
variants and points within AUTOCAST_TOLERANCE_PX for autocast ones.

Labels mode times, for each K of `--labels`, the joint fit (`vidcorr.fit_labels`: every point labelled on
frames 0..K-1, points x restarts x K samples a step in one call) against K separate fits (`vidcorr.fit` on
each frame in turn), alternating. The work per step is the same; what the joint fit can save is shared
batches and per-call overheads. Where `fit_labels` is missing (before the several-label fit is merged) it
says so in one line and exits 0.

`--fast-levers` prototypes levers that keep the math on the fast path only, without touching the
library: `channels_last_vae`, `channels_last_unet`, `contiguous_vae` (module weights converted to that
layout before the call and back to the one they had after it; in comparison mode inside the timing, so the
fast path pays for its conversions, in breakdown mode outside it), `inference_mode_vae` (LDM.encode under
torch.inference_mode instead of torch.no_grad), `no_mkldnn` (oneDNN disabled).
`--baseline` alternates the fast path without its levers too, so their effect is measured under
the same conditions. The fit report also counts, for the paper schedule (5 restarts x 129 steps)
of the measured points, how many of the crops it draws are distinct, from the same random streams
without running the model: the share of VAE encodes that encoding each distinct crop once saves
there (vidcorr's EncodeCache does; a one-step measurement cannot show it).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import gc
import importlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

import vidcorr
from vidcorr import LDM, Config
from vidcorr.io.points import PointLabels
from vidcorr.method.attention import layer_maps
from vidcorr.method.geometry import CORNER_ANCHORS
from vidcorr.method.microbatch import auto_batch
from vidcorr.method.model import resolve_device

MIB = 1024 * 1024
PAPER = Config.preset("paper")
FAST_PRESET = Config.preset("fast")
LEVERS = ("channels_last_vae", "channels_last_unet", "contiguous_vae", "inference_mode_vae", "no_mkldnn")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The CPU target (issue 24; 0.6 before it): one fit step, SD 1.x at 512, fast / seed-schedule time at most this.
TARGET_FIT_RATIO = 0.5
TARGET_POINTS_PX = 1.0
# --quick: the tiny model at its native size, one repeat on one thread, so every mode runs in seconds.
QUICK = {"arch": "tiny", "image_size": 64, "repeats": 1, "warmup": 0, "threads": 1, "device": "cpu"}


# --- measuring ------------------------------------------------------------------------------------
def _status_kib(field_name: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), or None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mib(reset_worked: bool) -> tuple[float, str]:
    hwm = _status_kib("VmHWM")
    if reset_worked and hwm is not None:
        return hwm / 1024, "VmHWM since the call began"
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB, "process lifetime peak (ru_maxrss)"


@dataclass
class Sample:
    """One timed call: wall and process CPU seconds, memory before it and at its peak."""

    wall_s: float
    cpu_s: float
    rss_before_mib: float | None
    peak_rss_mib: float
    peak_rss_kind: str
    cuda_peak_mib: float | None = None
    load_avg_1min: float | None = None  # the machine's 1-minute load average when the call ended
    marks: list[tuple[str, int, int, float]] = field(default_factory=list)  # progress callbacks: stage, done, total, t


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[Callable[[str, int, int], None]], Any], device: torch.device) -> tuple[Any, Sample]:
    """Call fn(progress) once and measure it; progress marks are stamped in seconds since the start."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    rss_kib = _status_kib("VmRSS")
    reset = _reset_peak_rss()
    marks: list[tuple[str, int, int, float]] = []
    cpu0, start = time.process_time(), time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        _sync(device)
        marks.append((stage, done, total, time.perf_counter() - start))

    result = fn(progress)
    _sync(device)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    peak, kind = _peak_rss_mib(reset)
    cuda_peak = torch.cuda.max_memory_allocated(device) / MIB if device.type == "cuda" else None
    return result, Sample(wall, cpu, rss_kib / 1024 if rss_kib is not None else None, peak, kind, cuda_peak,
                          _load_average(), marks)


def _load_average() -> float | None:
    """1-minute load average (Unix): above the core count, other processes were competing."""
    import os

    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# --- levers (prototyped here; the library is not changed) ------------------------------------------
def memory_format_of(module: torch.nn.Module) -> torch.memory_format:
    """How the module's convolution weights are stored: channels_last or contiguous_format (read from its
    first 4-D weight with a kernel wider than 1 x 1, where the two layouts differ)."""
    for param in module.parameters():
        if param.dim() == 4 and param.shape[-2:] != (1, 1):
            return torch.channels_last if not param.is_contiguous() and param.is_contiguous(
                memory_format=torch.channels_last) else torch.contiguous_format
    return torch.contiguous_format


def _to_format(module: torch.nn.Module, memory_format: torch.memory_format) -> None:
    # nn.Module.to itself: diffusers' ModelMixin.to adds dtype checks that do not matter here (and torch's stubs
    # omit its memory_format keyword).
    cast(Callable[..., torch.nn.Module], torch.nn.Module.to)(module, memory_format=memory_format)


@contextlib.contextmanager
def _memory_format(module: torch.nn.Module, memory_format: torch.memory_format) -> Iterator[None]:
    """The module's weights in `memory_format` for the block, then back in the layout they had (vidcorr keeps
    the VAE in channels_last on a CPU)."""
    previous = memory_format_of(module)
    _to_format(module, memory_format)
    try:
        yield
    finally:
        _to_format(module, previous)


@contextlib.contextmanager
def _patched_encode(ldm: LDM, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """Replace ldm.encode by wrap(current encode) for the block, then put back what was there."""
    missing = object()
    previous = ldm.__dict__.get("encode", missing)
    ldm.encode = wrap(ldm.encode)  # type: ignore[method-assign]
    try:
        yield
    finally:
        if previous is missing:
            del ldm.encode
        else:
            ldm.encode = previous  # type: ignore[method-assign]


def _inference_mode(encode: Callable) -> Callable:
    """LDM.encode under torch.inference_mode (no view or version tracking) instead of torch.no_grad."""
    def wrapped(images: torch.Tensor, max_batch: int | None = None) -> torch.Tensor:
        with torch.inference_mode():
            latents = encode(images, max_batch)
        return latents.clone()  # a normal tensor again, so autograd may use it downstream
    return wrapped


@contextlib.contextmanager
def _mkldnn_disabled() -> Iterator[None]:
    # Only the enabled flag: torch.backends.mkldnn.flags() would also reset TF32 and precision flags.
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


@contextlib.contextmanager
def apply_levers(ldm: LDM, levers: Sequence[str]) -> Iterator[None]:
    """Apply prototype levers for the duration of the block (see the module docstring)."""
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown:
        raise SystemExit(f"unknown levers {unknown}; choose from {', '.join(LEVERS)}")
    with contextlib.ExitStack() as stack:
        if "channels_last_vae" in levers:
            stack.enter_context(_memory_format(ldm.vae, torch.channels_last))
        if "channels_last_unet" in levers:
            stack.enter_context(_memory_format(ldm.unet, torch.channels_last))
        if "contiguous_vae" in levers:
            stack.enter_context(_memory_format(ldm.vae, torch.contiguous_format))
        if "inference_mode_vae" in levers:
            stack.enter_context(_patched_encode(ldm, _inference_mode))
        if "no_mkldnn" in levers:
            stack.enter_context(_mkldnn_disabled())
        yield


def fast_options(args: argparse.Namespace) -> list[str]:
    """The library options (not prototype levers) the `fast` path runs with: compile, autocast."""
    return (["compile"] if args.compile else []) + ([f"autocast_{args.autocast}"] if args.autocast != "none" else [])


def configured_copy(ldm: LDM, args: argparse.Namespace) -> LDM:
    """A copy of `ldm` (same weights) with --autocast and --compile applied, so that the reference
    path keeps running the plain model."""
    copy = LDM(deepcopy(ldm.unet), deepcopy(ldm.vae), model_id=ldm.model_id, random_weights=ldm.random_weights)
    copy.set_autocast(None if args.autocast == "none" else DTYPES[args.autocast])
    return copy.compile() if args.compile else copy


# --- inputs ---------------------------------------------------------------------------------------
def build_model(arch: str, device: torch.device, dtype: torch.dtype) -> LDM:
    if arch == "tiny":
        return LDM.tiny(seed=0, device=device, dtype=dtype)
    if arch == "sd14":
        return LDM.random_sd14(seed=0, device=device, dtype=dtype)
    raise SystemExit(f"unknown arch {arch!r}; choose tiny or sd14")


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB texture (uint8 HxWx3), so crops and resizes have structure to move."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, height // 16), max(2, width // 16), generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0]
    fine = torch.rand(3, height, width, generator=generator) * 0.1
    return ((smooth + fine).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def query_points(count: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """(count, 2) x, y spread over the inner 80 % of a W x H image."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, size=(count, 2)) * [width, height]


def measured_inputs(args: argparse.Namespace) -> tuple[Config, np.ndarray, np.ndarray, np.ndarray]:
    """The config, the image fitted on, the image located on and the points, from the command's options.

    The images are 4:3, so the squash to the model's square is exercised as in real use."""
    size = args.image_size
    cfg = Config(image_size=size, restarts=args.restarts, num_steps=args.steps, crops=args.crops,
                 max_batch=args.max_batch, seed=args.seed)
    width, height = size * 4 // 3, size
    image, target = synthetic_image(height, width, seed=1), synthetic_image(height, width, seed=2)
    return cfg, image, target, query_points(args.points, width, height, seed=args.seed)


# --- comparison ---------------------------------------------------------------------------------
def _iteration_times(sample: Sample, crops: int, per_sample_marks: bool) -> list[float]:
    """Seconds per locate crop iteration (summed over samples for the reference's per-sample marks)."""
    per_iteration = [0.0] * crops
    previous = 0.0
    for _, done, _, t in sample.marks:
        iteration = (done - 1) % crops if per_sample_marks else done - 1
        per_iteration[iteration] += t - previous
        previous = t
    return per_iteration


def _locate_estimates(iterations: list[float], wall_s: float, points: int, restarts: int) -> dict[str, Any]:
    """Per-frame-per-point seconds at the paper and fast presets from measured iteration times.

    The corner iterations (the first four) and the later ones are modelled separately; the work
    outside the iterations (canvas averaging, softmax, argmax) is counted once per call. Scaling to
    another restart count is linear in the samples.
    """
    corners = iterations[:len(CORNER_ANCHORS)]
    later = iterations[len(CORNER_ANCHORS):]
    corner_s = statistics.mean(corners)
    later_s = statistics.mean(later) if later else corner_s
    overhead_s = max(0.0, wall_s - sum(iterations))

    def estimate(cfg: Config) -> float:
        n_corner = min(cfg.crops, len(CORNER_ANCHORS))
        per_call = n_corner * corner_s + max(0, cfg.crops - n_corner) * later_s + overhead_s
        return per_call * cfg.restarts / restarts / points

    measured_later = bool(later)
    return {
        "corner_iteration_s": corner_s,
        "later_iteration_s": later_s if measured_later else None,
        "paper_per_frame_point_s": estimate(PAPER),
        "fast_preset_per_frame_point_s": estimate(FAST_PRESET),
        "later_iterations_measured": measured_later,
    }


def _summary(samples: list[Sample]) -> dict[str, Any]:
    return {
        "wall_s": [s.wall_s for s in samples],
        "cpu_s": [s.cpu_s for s in samples],
        "load_avg_1min": [s.load_avg_1min for s in samples],
        "median_wall_s": _median([s.wall_s for s in samples]),
        "median_cpu_s": _median([s.cpu_s for s in samples]),
        "rss_before_mib": _median([s.rss_before_mib for s in samples]),
        "peak_rss_mib": max(s.peak_rss_mib for s in samples),
        "peak_rss_kind": samples[0].peak_rss_kind,
        "cuda_peak_mib": max(s.cuda_peak_mib for s in samples) if samples[0].cuda_peak_mib is not None else None,
    }


def _paired_ratio(ref: list[Sample], fast: list[Sample], attr: str) -> float | None:
    """Median over repeats of fast / reference, each pair measured back to back."""
    return _median([_ratio(getattr(f, attr), getattr(r, attr)) for r, f in zip(ref, fast, strict=True)])


def run_comparison(args: argparse.Namespace, ldm: LDM, device: torch.device) -> dict[str, Any]:
    """Alternate the reference and fast paths (and, with --baseline, the fast path without levers)."""
    cfg, image, target, points = measured_inputs(args)
    width, height = image.shape[1], image.shape[0]
    what = set(args.what)
    # path -> levers applied around its calls (inside the timing: the fast path pays its conversions).
    paths: dict[str, list[str] | None] = {"reference": None, "fast": list(args.fast_levers)}
    options = fast_options(args)
    if args.baseline and (args.fast_levers or options):
        paths["fast_no_levers"] = []
    # --compile / --autocast act on the `fast` path only, through a copy of the model (same weights).
    models = dict.fromkeys(paths, ldm)
    if options:
        models["fast"] = configured_copy(ldm, args)

    embeddings: dict[str, vidcorr.Embeddings] = {}
    if "fit" not in what:
        # Locate only: every path locates the same unfitted (N(0, 1)) embeddings.
        start = vidcorr.fit(ldm, image, points, cfg.replace(num_steps=0))
        embeddings = dict.fromkeys(paths, start)

    def fit_fn(path: str) -> Callable[[Callable], vidcorr.Embeddings]:
        def run(progress: Callable) -> vidcorr.Embeddings:
            levers, model = paths[path], models[path]
            if levers is None:
                return vidcorr.fit_reference(model, image, points, cfg, progress=progress)
            with apply_levers(model, levers):
                return vidcorr.fit(model, image, points, cfg, progress=progress)
        return run

    def locate_fn(path: str) -> Callable[[Callable], vidcorr.Location]:
        def run(progress: Callable) -> vidcorr.Location:
            levers, model = paths[path], models[path]
            if levers is None:
                return vidcorr.locate_reference(model, target, embeddings[path], cfg, progress=progress)
            with apply_levers(model, levers):
                return vidcorr.locate(model, target, embeddings[path], cfg, progress=progress)
        return run

    fit_samples: dict[str, list[Sample]] = {path: [] for path in paths}
    locate_samples: dict[str, list[Sample]] = {path: [] for path in paths}
    locations: dict[str, vidcorr.Location] = {}
    warmup_s: dict[str, float] = {}
    if args.compile:
        # torch.compile compiles on the first call at each shape: run the fast path once, untimed.
        # The fit is deterministic, so its warm-up embeddings are the ones the timed calls return.
        if "fit" in what:
            embeddings["fast"], sample = timed(fit_fn("fast"), device)
            warmup_s["fit"] = sample.wall_s
        if "locate" in what:
            warmup_s["locate"] = timed(locate_fn("fast"), device)[1].wall_s
        _log(args, f"compile warm-up (first calls, not reported): {warmup_s}")
    for repeat in range(-args.warmup, args.repeats):
        for path in paths:
            if "fit" in what:
                emb, sample = timed(fit_fn(path), device)
                embeddings.setdefault(path, emb)
                if repeat >= 0:
                    fit_samples[path].append(sample)
                _log(args, f"repeat {repeat} {path} fit {sample.wall_s:.2f} s (CPU {sample.cpu_s:.2f} s, "
                           f"load {sample.load_avg_1min})")
            if "locate" in what:
                loc, sample = timed(locate_fn(path), device)
                locations.setdefault(path, loc)
                if repeat >= 0:
                    locate_samples[path].append(sample)
                _log(args, f"repeat {repeat} {path} locate {sample.wall_s:.2f} s (CPU {sample.cpu_s:.2f} s, "
                           f"load {sample.load_avg_1min})")

    result: dict[str, Any] = {
        "paths": {path: levers for path, levers in paths.items()},
        "fast_options": options, "compile_warmup_s": warmup_s,
        "fast_batch": {"fit": auto_batch(ldm, cfg, training=True), "locate": auto_batch(ldm, cfg, training=False)},
    }
    samples_per_step = args.points * args.restarts
    if "fit" in what:
        fit: dict[str, Any] = {}
        for path, samples in fit_samples.items():
            summary = _summary(samples)
            per_step = summary["median_wall_s"] / args.steps
            summary.update({
                "per_step_s": per_step,
                "per_keypoint_step_s": per_step / args.points,
                "per_sample_step_s": per_step / samples_per_step,
                "per_keypoint_paper_s": per_step / samples_per_step * PAPER.restarts * PAPER.num_steps,
                "per_keypoint_fast_preset_s": per_step / samples_per_step * FAST_PRESET.restarts
                * FAST_PRESET.num_steps,
            })
            if path != "reference":
                summary.update(_ratios(samples, fit_samples["reference"], summary, fit["reference"]))
                summary["embeddings_max_abs_diff"] = float(
                    (embeddings[path].tensors - embeddings["reference"].tensors).abs().max())
            fit[path] = summary
        fit["ratio_wall"] = fit["fast"]["ratio_wall"]
        fit["ratio_cpu"] = fit["fast"]["ratio_cpu"]
        fit["ratio_wall_paired"] = fit["fast"]["ratio_wall_paired"]
        fit["embeddings_max_abs_diff"] = fit["fast"]["embeddings_max_abs_diff"]
        fit["paper_schedule_crops"] = paper_crop_reuse(ldm, points, (width, height), cfg)
        if "fast_no_levers" in fit:
            fit["levers_effect_wall_paired"] = _paired_ratio(fit_samples["fast_no_levers"], fit_samples["fast"],
                                                             "wall_s")
        result["fit"] = fit
    if "locate" in what:
        locate: dict[str, Any] = {}
        for path, samples in locate_samples.items():
            summary = _summary(samples)
            iterations = [
                statistics.median(values) for values in zip(
                    *(_iteration_times(s, args.crops, per_sample_marks=path == "reference") for s in samples),
                    strict=True)
            ]
            summary["iteration_s"] = iterations
            summary["per_frame_point_s"] = summary["median_wall_s"] / args.points
            summary.update(_locate_estimates(iterations, summary["median_wall_s"], args.points, args.restarts))
            if path != "reference":
                summary.update(_ratios(samples, locate_samples["reference"], summary, locate["reference"]))
                diff = locations[path].points_model - locations["reference"].points_model
                summary["points_max_diff_px"] = float(np.sqrt((diff**2).sum(axis=1)).max())
            summary["points_model"] = locations[path].points_model.tolist()
            locate[path] = summary
        for key in ("median_wall_s", "median_cpu_s", "paper_per_frame_point_s", "fast_preset_per_frame_point_s"):
            locate[f"ratio_{key}"] = _ratio(locate["fast"][key], locate["reference"][key])
        locate["points_max_diff_px"] = locate["fast"]["points_max_diff_px"]
        if "fast_no_levers" in locate:
            locate["levers_effect_wall_paired"] = _paired_ratio(locate_samples["fast_no_levers"],
                                                                locate_samples["fast"], "wall_s")
        result["locate"] = locate
    return result


def paper_crop_reuse(ldm: LDM, points_xy: np.ndarray, size_wh: tuple[int, int], cfg: Config) -> dict[str, Any]:
    """Crops the paper schedule (5 restarts x 129 steps) draws for these points, and how many differ.

    Replays the fit's own per-sample random streams (no model is run): every draw is a (flip,
    window) pair of one image, and equal pairs give equal VAE inputs, so `distinct` encodes would
    do where the seed makes `draws`.
    """
    from vidcorr.method import streams
    from vidcorr.method.fit import _draw  # the fit's own draw, so the replay cannot drift from it
    from vidcorr.method.geometry import crop_side, squash_points

    paper = PAPER.replace(image_size=cfg.image_size, seed=cfg.seed)
    size = paper.image_size
    side = crop_side(size, paper.crop_percent)
    latent_shape = (4, size // ldm.latent_factor, size // ldm.latent_factor)
    points_model = squash_points(points_xy, size_wh, size)
    seen: set[tuple[bool, Any]] = set()
    draws = 0
    for n, point in enumerate(points_model):
        for r in range(paper.restarts):
            generator = streams.stream(paper.seed, streams.FIT, n, r)
            for _ in range(paper.num_steps):
                draw = _draw(point, paper, side, latent_shape, generator)
                seen.add((draw.flipped, draw.window))
                draws += 1
    return {"points": len(points_model), "draws": draws, "distinct": len(seen),
            "encodes_saved_fraction": 1 - len(seen) / draws}


def _ratios(samples: list[Sample], reference: list[Sample], summary: dict[str, Any],
            reference_summary: dict[str, Any]) -> dict[str, float | None]:
    """This path against the reference: ratio of medians (wall, CPU) and median of paired ratios."""
    return {
        "ratio_wall": _ratio(summary["median_wall_s"], reference_summary["median_wall_s"]),
        "ratio_cpu": _ratio(summary["median_cpu_s"], reference_summary["median_cpu_s"]),
        "ratio_wall_paired": _paired_ratio(reference, samples, "wall_s"),
    }


# --- variants: precision and weight layout on the fast path ---------------------------------------------
AUTOCASTS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
LAYOUTS = {"unet_cl": ("unet", torch.channels_last), "unet_nchw": ("unet", torch.contiguous_format),
           "vae_cl": ("vae", torch.channels_last), "vae_nchw": ("vae", torch.contiguous_format)}
# How far an autocast variant's located points may lie from float32's (px at the model's size) and still
# count as "within tolerance"; a float32 variant must locate the very same points.
AUTOCAST_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Variant:
    """How the fast path computes: `PRECISION[+LAYOUT...]`, e.g. ``bf16+unet_cl``.

    autocast: torch.autocast's dtype (None: the weights' own, float32). layouts: (module, memory format) for
    the UNet and/or the VAE weights; a module not named stays as vidcorr leaves it (the VAE channels_last on a
    CPU, the UNet contiguous).
    """

    name: str
    autocast: torch.dtype | None = None
    layouts: tuple[tuple[str, torch.memory_format], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Variant:
        """A variant from its name; ValueError (saying what is accepted) for anything else."""
        precision, *modifiers = text.strip().split("+")
        if precision not in AUTOCASTS:
            raise ValueError(f"variant {text!r}: precision {precision!r} is not one of {', '.join(AUTOCASTS)}")
        unknown = [m for m in modifiers if m not in LAYOUTS]
        if unknown:
            raise ValueError(f"variant {text!r}: layout {unknown[0]!r} is not one of {', '.join(LAYOUTS)}")
        modules = [LAYOUTS[m][0] for m in modifiers]
        if len(set(modules)) != len(modules):
            raise ValueError(f"variant {text!r} gives one module two layouts")
        return cls(text.strip(), AUTOCASTS[precision], tuple(LAYOUTS[m] for m in modifiers))

    @contextlib.contextmanager
    def applied(self, ldm: LDM) -> Iterator[dict[str, str]]:
        """The model computing as this variant says for the block (the conversions happen here, outside any
        timing); yields the layouts in effect, then puts back the autocast and the layouts it found."""
        previous = ldm.autocast
        with contextlib.ExitStack() as stack:
            for module, memory_format in self.layouts:
                stack.enter_context(_memory_format(getattr(ldm, module), memory_format))
            ldm.set_autocast(self.autocast)
            try:
                yield {name: _format_name(memory_format_of(getattr(ldm, name))) for name in ("unet", "vae")}
            finally:
                ldm.set_autocast(previous)


def _format_name(memory_format: torch.memory_format) -> str:
    return "channels_last" if memory_format == torch.channels_last else "contiguous"


def _point_distances(a: vidcorr.Location, b: vidcorr.Location) -> np.ndarray:
    return np.sqrt(((a.points_model - b.points_model) ** 2).sum(axis=1))


def run_variants(args: argparse.Namespace, ldm: LDM, device: torch.device) -> dict[str, Any]:
    """The fast path (`vidcorr.fit` / `vidcorr.locate`) under each variant in turn, alternating within each repeat,
    on one model (each variant's state is set before its calls and undone after, untimed); each variant locates
    the embeddings it fitted itself, so its points differ from the first variant's end to end."""
    variants = [Variant.parse(text) for text in args.variants]
    cfg, image, target, points = measured_inputs(args)
    what = set(args.what)
    start = None if "fit" in what else vidcorr.fit(ldm, image, points, cfg.replace(num_steps=0))
    names = [v.name for v in variants]
    fit_samples: dict[str, list[Sample]] = {name: [] for name in names}
    locate_samples: dict[str, list[Sample]] = {name: [] for name in names}
    embeddings: dict[str, vidcorr.Embeddings] = {}
    locations: dict[str, vidcorr.Location] = {}
    layouts: dict[str, dict[str, str]] = {}
    for repeat in range(-args.warmup, args.repeats):
        for variant in variants:
            name = variant.name
            with variant.applied(ldm) as layouts[name]:
                if "fit" in what:
                    emb, sample = timed(lambda progress: vidcorr.fit(ldm, image, points, cfg, progress=progress),
                                        device)
                    embeddings.setdefault(name, emb)
                    if repeat >= 0:
                        fit_samples[name].append(sample)
                    _log(args, f"repeat {repeat} {name} fit {sample.wall_s:.2f} s (load {sample.load_avg_1min})")
                if "locate" in what:
                    fitted = embeddings.get(name, start)
                    loc, sample = timed(lambda progress, e=fitted: vidcorr.locate(ldm, target, e, cfg,
                                                                                  progress=progress), device)
                    locations.setdefault(name, loc)
                    if repeat >= 0:
                        locate_samples[name].append(sample)
                    _log(args, f"repeat {repeat} {name} locate {sample.wall_s:.2f} s (load {sample.load_avg_1min})")

    baseline = variants[0]
    rows = []
    for variant in variants:
        name = variant.name
        row: dict[str, Any] = {"variant": name, "autocast": None if variant.autocast is None else
                               str(variant.autocast).removeprefix("torch."), "layouts": layouts[name]}
        if "fit" in what:
            fit = _summary(fit_samples[name])
            fit["per_step_s"] = fit["median_wall_s"] / args.steps
            fit["per_sample_step_s"] = fit["per_step_s"] / (args.points * args.restarts)
            row["fit"] = fit
        if "locate" in what:
            locate = _summary(locate_samples[name])
            iterations = [statistics.median(values) for values in zip(
                *(_iteration_times(s, args.crops, per_sample_marks=False) for s in locate_samples[name]), strict=True)]
            locate.update(iteration_s=iterations, per_crop_s=locate["median_wall_s"] / args.crops,
                          points_model=locations[name].points_model.tolist())
            row["locate"] = locate
        if variant is not baseline:
            row.update(_against_baseline(variant, baseline, fit_samples, locate_samples, embeddings, locations, row,
                                         rows[0]))
        rows.append(row)
    return {"baseline": baseline.name, "rows": rows, "tolerance_px": AUTOCAST_TOLERANCE_PX,
            "fit_batch": auto_batch(ldm, cfg, training=True), "locate_batch": auto_batch(ldm, cfg, training=False)}


def _against_baseline(variant: Variant, baseline: Variant, fit_samples: dict[str, list[Sample]],
                      locate_samples: dict[str, list[Sample]], embeddings: dict[str, vidcorr.Embeddings],
                      locations: dict[str, vidcorr.Location], row: dict[str, Any],
                      base_row: dict[str, Any]) -> dict[str, Any]:
    """A variant's ratios and differences to the baseline, and whether it pays: every measured paired ratio
    below 1 with its points identical (float32 against float32) or within AUTOCAST_TOLERANCE_PX."""
    out: dict[str, Any] = {}
    ratios = []
    for stage, samples in (("fit", fit_samples), ("locate", locate_samples)):
        if stage in row:
            paired = _paired_ratio(samples[baseline.name], samples[variant.name], "wall_s")
            out[f"{stage}_ratio_wall"] = _ratio(row[stage]["median_wall_s"], base_row[stage]["median_wall_s"])
            out[f"{stage}_ratio_wall_paired"] = paired
            ratios.append(paired)
    if "fit" in row:
        out["embeddings_max_abs_diff"] = float((embeddings[variant.name].tensors
                                                - embeddings[baseline.name].tensors).abs().max())
    tolerance = 0.0 if variant.autocast is None and baseline.autocast is None else AUTOCAST_TOLERANCE_PX
    within = None
    if "locate" in row:
        distance = _point_distances(locations[variant.name], locations[baseline.name])
        out.update(points_max_diff_px=float(distance.max()), points_mean_diff_px=float(distance.mean()),
                   points_over_1px=int((distance > 1).sum()))
        within = bool(distance.max() <= tolerance)
    out["points_tolerance_px"] = tolerance
    out["points_within_tolerance"] = within
    out["pays"] = bool(within is not False and all(r is not None and r < 1 for r in ratios))
    return out


# --- K labels: the joint fit against K separate fits ----------------------------------------------------
LABELS_MISSING = ("vidcorr.fit_labels is missing from this checkout (the joint fit on several labels per point "
                  "comes with the fitk branch): the K-label timings are skipped")


def find_fit_labels() -> Callable[..., vidcorr.Embeddings] | None:
    """`vidcorr.method.fit.fit_labels` where this checkout has it, else None."""
    return getattr(importlib.import_module("vidcorr.method.fit"), "fit_labels", None)


def label_set(points: np.ndarray, count: int) -> PointLabels:
    """Each point labelled on frames 0 .. count-1, at the same place on each."""
    rows = tuple(np.column_stack([np.arange(count, dtype=np.float64), np.repeat(point[None], count, axis=0)])
                 for point in np.asarray(points, dtype=np.float64))
    return PointLabels(tuple(str(n) for n in range(len(points))), rows)


def run_labels(args: argparse.Namespace, ldm: LDM, device: torch.device) -> dict[str, Any]:
    """For each K of --labels, alternating within each repeat: the joint fit (`fit_labels`, every point labelled
    on frames 0..K-1: points x restarts x K samples a step, in one call) and K separate fits (`vidcorr.fit` on
    each frame in turn, timed as one call). Same step count, same samples; the joint fit shares batches and one
    encode cache across frames, the separate fits do not."""
    fit_labels = find_fit_labels()
    if fit_labels is None:
        return {"skipped": LABELS_MISSING}
    cfg, image, _, points = measured_inputs(args)
    height, width = image.shape[:2]
    counts = sorted(set(args.labels))
    frames = {t: synthetic_image(height, width, seed=1 + t) for t in range(max(counts))}

    def joint(k: int) -> Callable[[Callable], vidcorr.Embeddings]:
        return lambda progress: fit_labels(ldm, {t: frames[t] for t in range(k)}, label_set(points, k), cfg,
                                           progress=progress)

    def separate(k: int) -> Callable[[Callable], list[vidcorr.Embeddings]]:
        return lambda progress: [vidcorr.fit(ldm, frames[t], points, cfg, progress=progress) for t in range(k)]

    samples: dict[tuple[int, str], list[Sample]] = {(k, way): [] for k in counts for way in ("joint", "separate")}
    first: dict[tuple[int, str], Any] = {}
    for repeat in range(-args.warmup, args.repeats):
        for k in counts:
            for way, call in (("joint", joint(k)), ("separate", separate(k))):
                result, sample = timed(call, device)
                first.setdefault((k, way), result)
                if repeat >= 0:
                    samples[(k, way)].append(sample)
                _log(args, f"repeat {repeat} K={k} {way} {sample.wall_s:.2f} s (load {sample.load_avg_1min})")
    rows = []
    for k in counts:
        joint_summary, separate_summary = _summary(samples[(k, "joint")]), _summary(samples[(k, "separate")])
        per_step = args.points * args.restarts * k
        rows.append({
            "labels": k, "samples_per_step": per_step, "joint": joint_summary, "separate": separate_summary,
            "joint_per_sample_step_s": joint_summary["median_wall_s"] / (per_step * args.steps),
            "separate_per_sample_step_s": separate_summary["median_wall_s"] / (per_step * args.steps),
            "ratio_wall": _ratio(joint_summary["median_wall_s"], separate_summary["median_wall_s"]),
            "ratio_wall_paired": _paired_ratio(samples[(k, "separate")], samples[(k, "joint")], "wall_s"),
        })
    result: dict[str, Any] = {"rows": rows, "fit_batch": auto_batch(ldm, cfg, training=True)}
    if 1 in counts:
        # One label per point: the joint fit is `fit` itself (same streams, same math).
        result["k1_joint_vs_separate_max_abs_diff"] = float(
            (first[(1, "joint")].tensors - first[(1, "separate")][0].tensors).abs().max())
        one = rows[0]["joint"]["median_wall_s"]
        for row in rows:
            row["joint_over_k_one_label_fits"] = _ratio(row["joint"]["median_wall_s"], row["labels"] * one)
    return result


# --- breakdown -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """One timed piece: what it runs, at which batch, under which levers."""

    name: str
    batch: int
    run: Callable[[], dict[str, float]]


def _breakdown_pieces(ldm: LDM, cfg: Config, batch: int, generator: torch.Generator) -> list[Piece]:
    size = cfg.image_size
    latent_side = size // ldm.latent_factor
    images = torch.rand(batch, 3, size, size, generator=generator)
    latents = torch.randn(batch, 4, latent_side, latent_side, generator=generator)
    contexts = torch.randn(batch, cfg.num_tokens, ldm.context_dim, generator=generator)
    layers = ldm.select_layers(size, cfg.layers)
    timestep = ldm.timestep(cfg.num_inference_steps, cfg.fit_timestep_index)
    targets = torch.rand(batch, size, size, generator=generator).to(ldm.device)

    def encode(levers: Sequence[str]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            with apply_levers(ldm, levers):
                start = time.perf_counter()
                ldm.encode(images)
                _sync(ldm.device)
                return {"s": time.perf_counter() - start}
        return run

    def forward(explicit: bool, stop_early: bool, levers: Sequence[str]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            with apply_levers(ldm, levers), torch.no_grad():
                start = time.perf_counter()
                ldm.attention_maps(latents, timestep, contexts, layers, cfg.heads, cfg.token_index,
                                   stop_early=stop_early, explicit_everywhere=explicit)
                _sync(ldm.device)
                return {"s": time.perf_counter() - start}
        return run

    def backward(explicit: bool, stop_early: bool, levers: Sequence[str]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            leaf = contexts.clone().to(ldm.device).requires_grad_(True)
            with apply_levers(ldm, levers):
                start = time.perf_counter()
                maps = ldm.attention_maps(latents, timestep, leaf, layers, cfg.heads, cfg.token_index,
                                          stop_early=stop_early, explicit_everywhere=explicit)
                predicted = layer_maps(maps, cfg.layers, size, heads_first=not explicit)
                loss = ((predicted - targets[:, None]) ** 2).mean(dim=(1, 2, 3)).sum()
                _sync(ldm.device)
                middle = time.perf_counter()
                loss.backward()
                _sync(ldm.device)
                end = time.perf_counter()
            return {"s": end - start, "forward_s": middle - start, "backward_s": end - middle}
        return run

    def convert(module: torch.nn.Module) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            previous = memory_format_of(module)
            _to_format(module, torch.contiguous_format)
            start = time.perf_counter()
            _to_format(module, torch.channels_last)
            _sync(ldm.device)
            seconds = time.perf_counter() - start
            _to_format(module, previous)
            return {"s": seconds}
        return run

    deepest = max(cfg.layers)
    cl = ["channels_last_unet"]
    pieces = [
        Piece("convert_vae_to_channels_last", batch, convert(ldm.vae)),
        Piece("convert_unet_to_channels_last", batch, convert(ldm.unet)),
        Piece("vae_encode", batch, encode([])),
        Piece("vae_encode[inference_mode]", batch, encode(["inference_mode_vae"])),
        Piece("vae_encode[channels_last]", batch, encode(["channels_last_vae"])),
        Piece("vae_encode[contiguous]", batch, encode(["contiguous_vae"])),
        Piece("vae_encode[no_mkldnn]", batch, encode(["no_mkldnn"])),
        Piece("unet_forward[explicit,full]", batch, forward(True, False, [])),
        Piece("unet_forward[fused,full]", batch, forward(False, False, [])),
        Piece(f"unet_forward[fused,stop@{deepest}]", batch, forward(False, True, [])),
        Piece(f"unet_forward[fused,stop@{deepest},channels_last]", batch, forward(False, True, cl)),
        Piece("unet_forward+backward[explicit,full]", batch, backward(True, False, [])),
        Piece(f"unet_forward+backward[fused,stop@{deepest}]", batch, backward(False, True, [])),
        Piece(f"unet_forward+backward[fused,stop@{deepest},channels_last]", batch, backward(False, True, cl)),
        Piece(f"unet_forward+backward[fused,stop@{deepest},no_mkldnn]", batch,
              backward(False, True, ["no_mkldnn"])),
    ]
    # The reference configuration (explicit attention everywhere, full UNet) only ever runs at batch
    # 1, and its per-head probability maps make it the one that runs out of memory at larger batches.
    return [p for p in pieces if batch == 1 or not ("explicit" in p.name or p.name.startswith("convert"))]


def run_breakdown(args: argparse.Namespace, ldm: LDM) -> dict[str, Any]:
    cfg = Config(image_size=args.image_size, seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    batches = args.batches or sorted({1, args.points * args.restarts})
    pieces = [piece for batch in batches for piece in _breakdown_pieces(ldm, cfg, batch, generator)
              if not args.pieces or any(fnmatch.fnmatch(piece.name, pattern) for pattern in args.pieces)]
    timings: dict[tuple[str, int], list[dict[str, float]]] = {(p.name, p.batch): [] for p in pieces}
    loads: dict[tuple[str, int], list[float | None]] = {(p.name, p.batch): [] for p in pieces}
    for repeat in range(-args.warmup, args.repeats):
        for piece in pieces:
            gc.collect()
            cpu0 = time.process_time()
            measured = piece.run()
            measured["cpu_s"] = time.process_time() - cpu0  # includes the untimed set-up
            if repeat >= 0:
                timings[(piece.name, piece.batch)].append(measured)
                loads[(piece.name, piece.batch)].append(_load_average())
            _log(args, f"repeat {repeat} {piece.name} batch {piece.batch}: {measured['s']:.3f} s "
                       f"(load {_load_average()})")
    rows = []
    for (name, batch), values in timings.items():
        row: dict[str, Any] = {"piece": name, "batch": batch}
        for key in values[0]:
            row[f"median_{key}"] = statistics.median(v[key] for v in values)
            row[key] = [v[key] for v in values]
        row["median_per_sample_s"] = row["median_s"] / batch
        row["load_avg_1min"] = loads[(name, batch)]
        rows.append(row)
    return {"batches": batches, "pieces": rows}


# --- report ---------------------------------------------------------------------------------------
def machine_info(device: torch.device) -> dict[str, Any]:
    import diffusers

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    info = {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "logical_cpus": _cpu_count(), "torch": torch.__version__, "diffusers": diffusers.__version__,
        "torch_threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(),
        "device": str(device), "memory_gib": _memory_gib(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_count() -> int | None:
    import os

    return os.cpu_count()


def _memory_gib() -> float | None:
    kib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
    return None if kib is None else kib / 1024 / 1024


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                               strict=True)))
             for row in (header, *rows)]
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    s = report["settings"]
    out = [f"vidcorr speed: arch {s['arch']}, {s['image_size']}px, {s['device']} {s['dtype']}, "
           f"{report['machine']['logical_cpus']} logical CPUs, torch {report['machine']['torch']} "
           f"({report['machine']['torch_threads']} threads)"]
    if "variants" in report:
        return "\n".join([*out, *format_variants(report["variants"], s), *(f"* {n}" for n in report["notes"])])
    if "labels" in report:
        return "\n".join([*out, *format_labels(report["labels"], s), *(f"* {n}" for n in report["notes"])])
    if "breakdown" in report:
        rows = [(r["piece"], str(r["batch"]), _fmt(r["median_s"]), _fmt(r["median_per_sample_s"]),
                 _fmt(r.get("median_forward_s")), _fmt(r.get("median_backward_s")), _fmt(r["median_cpu_s"]))
                for r in report["breakdown"]["pieces"]]
        out.append(_table(("piece", "batch", "median wall s", "wall s/sample", "fwd s", "bwd s", "CPU s"), rows))
        return "\n".join(out)
    c = report["comparison"]
    out.append(f"{s['points']} points x {s['restarts']} restarts, fit {s['steps']} step(s), locate {s['crops']} "
               f"crop(s); median of {s['repeats']} alternating repeats; fast batch {c['fast_batch']}; "
               f"fast levers {s['fast_levers'] or 'none'}; fast options {c.get('fast_options') or 'none'}")
    others = [path for path in c["paths"] if path != "reference"]
    rows = []
    sections = []
    if "fit" in c:
        sections.append(("fit", (
            ("median_wall_s", "fit: all points, all steps (wall s)"),
            ("median_cpu_s", "fit: all points, all steps (CPU s)"),
            ("per_keypoint_step_s", "fit: per keypoint per step (s)"),
            ("per_keypoint_paper_s", "fit: per keypoint, 5x129 paper schedule (s)*"),
            ("peak_rss_mib", "fit: peak RSS (MiB)"),
            ("cuda_peak_mib", "fit: CUDA max allocated (MiB)"))))
    if "locate" in c:
        sections.append(("locate", (
            ("median_wall_s", "locate: one frame, all points (wall s)"),
            ("median_cpu_s", "locate: one frame, all points (CPU s)"),
            ("per_frame_point_s", f"locate: per frame per point, {s['restarts']}x{s['crops']} (s)"),
            ("paper_per_frame_point_s", "locate: per frame per point, paper 5x20 (s)*"),
            ("fast_preset_per_frame_point_s", "locate: per frame per point, fast 1x4 (s)*"),
            ("peak_rss_mib", "locate: peak RSS (MiB)"),
            ("cuda_peak_mib", "locate: CUDA max allocated (MiB)"))))
    for section, keys in sections:
        entries = c[section]
        for key, label in keys:
            row = [label, _fmt(entries["reference"][key])]
            for path in others:
                row += [_fmt(entries[path][key]), _fmt(_ratio(entries[path][key], entries["reference"][key]))]
            rows.append(tuple(row))
    header = ["measure", "reference"]
    for path in others:
        header += [path, f"{path}/ref"]
    out.append(_table(header, rows))
    for path in others:
        parts = []
        if "fit" in c:
            f = c["fit"][path]
            parts.append(f"fit wall {_fmt(f['ratio_wall'])} (paired median {_fmt(f['ratio_wall_paired'])}), "
                         f"CPU {_fmt(f['ratio_cpu'])}; embeddings max |diff| {f['embeddings_max_abs_diff']:.3g}")
        if "locate" in c:
            parts.append(f"located points max distance {c['locate'][path]['points_max_diff_px']:.3g} px "
                         f"(model space, {s['image_size']}px)")
        extras = c["paths"][path] + (c.get("fast_options", []) if path == "fast" else [])
        out.append(f"{path} ({', '.join(extras) or 'no levers'}) vs reference: " + "; ".join(parts))
    if "fit" in c:
        reuse = c["fit"]["paper_schedule_crops"]
        out.append(f"paper schedule for these {reuse['points']} points: {reuse['distinct']} distinct crops in "
                   f"{reuse['draws']} draws: encoding each once saves {reuse['encodes_saved_fraction']:.0%} of "
                   "the seed's VAE encodes there (a one-step measurement cannot show it)")
    for section in ("fit", "locate"):
        effect = c.get(section, {}).get("levers_effect_wall_paired")
        if effect is not None:
            out.append(f"{section}: levers' effect, fast / fast_no_levers (paired median, wall): {_fmt(effect)}")
    out.extend(f"* {note}" for note in report["notes"])
    if report.get("target"):
        t = report["target"]
        out.append(f"target (CPU, SD 1.x at 512, one fit step): fast/ref {_fmt(t['fit_ratio_wall'])} "
                   f"<= {TARGET_FIT_RATIO}: {'met' if t['fit_ratio_met'] else 'MISSED'}; points differ by "
                   f"{_fmt(t['points_max_diff_px'])} px <= {TARGET_POINTS_PX}: "
                   f"{'met' if t['points_met'] else 'MISSED' if t['points_met'] is not None else 'not measured'}")
    return "\n".join(out)


def format_variants(v: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """The variants' table: time per fit step and per locate crop, ratios to the baseline, agreement, verdict."""
    out = [f"fast path, {s['points']} points x {s['restarts']} restarts, fit {s['steps']} step(s), locate "
           f"{s['crops']} crop(s); median of {s['repeats']} alternating repeats; fit batch {v['fit_batch']}, locate "
           f"batch {v['locate_batch']}; ratios and differences against {v['baseline']}"]
    rows = []
    for r in v["rows"]:
        fit, locate = r.get("fit", {}), r.get("locate", {})
        if r["variant"] == v["baseline"]:
            verdict = "baseline"
        else:
            verdict = "pays" if r["pays"] else "does not pay"
        rows.append((r["variant"], f"unet {r['layouts']['unet']}, vae {r['layouts']['vae']}",
                     _fmt(fit.get("per_step_s")), _fmt(r.get("fit_ratio_wall_paired")), _fmt(locate.get("per_crop_s")),
                     _fmt(r.get("locate_ratio_wall_paired")), _fmt(r.get("embeddings_max_abs_diff")),
                     _fmt(r.get("points_max_diff_px")), _fmt(r.get("points_mean_diff_px")), verdict))
    out.append(_table(("variant", "layouts", "fit s/step", "x base", "locate s/crop", "x base", "emb max diff",
                       "pts max px", "pts mean px", "verdict"), rows))
    out.append(f"pays = every paired ratio < 1, points identical to {v['baseline']} (float32 variants) or within "
               f"{v['tolerance_px']} px (autocast); x base = median over repeats of variant / baseline, back to back")
    return out


def format_labels(labels: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """The K-label table: the joint fit against K separate fits, per K."""
    if "skipped" in labels:
        return [f"skipped: {labels['skipped']}"]
    out = [f"K labels per point (frames 0..K-1): {s['points']} points x {s['restarts']} restarts, {s['steps']} "
           f"step(s); joint = one fit_labels call, separate = K vidcorr.fit calls; median of {s['repeats']} "
           f"alternating repeats; fit batch {labels['fit_batch']}"]
    rows = [(str(r["labels"]), str(r["samples_per_step"]), _fmt(r["joint"]["median_wall_s"]),
             _fmt(r["separate"]["median_wall_s"]), _fmt(r["ratio_wall_paired"]),
             _fmt(r.get("joint_over_k_one_label_fits")), _fmt(r["joint_per_sample_step_s"])) for r in labels["rows"]]
    out.append(_table(("K", "samples/step", "joint s", "separate s", "joint/separate", "joint/(K x K=1)",
                       "joint s/sample/step"), rows))
    if "k1_joint_vs_separate_max_abs_diff" in labels:
        out.append("K = 1: joint and separate embeddings differ by at most "
                   f"{labels['k1_joint_vs_separate_max_abs_diff']:.3g}")
    return out


def _notes(args: argparse.Namespace, comparison: dict[str, Any]) -> list[str]:
    notes = []
    if "fit" in comparison:
        notes.append(f"paper fit schedule extrapolated linearly from {args.points * args.restarts} sample(s) x "
                     f"{args.steps} step(s) to 5 restarts x 129 steps per keypoint")
    if "locate" in comparison:
        notes.append(f"locate presets extrapolated linearly from {args.restarts} restart(s) x {args.crops} crop(s) "
                     "per point, corner and later crop iterations modelled apart")
        if not comparison["locate"]["fast"]["later_iterations_measured"]:
            notes.append("no crop after the 4 corner crops was measured (--crops < 5): later crops are assumed to "
                         "cost what corner crops did, so the fast path's paper-preset locate figure is a lower bound")
    if args.arch == "tiny":
        notes.append("tiny random-weight model: times show overheads, not what SD costs")
    return notes


def _mode_notes(args: argparse.Namespace) -> list[str]:
    return ["tiny random-weight model: times show overheads, not what SD costs"] if args.arch == "tiny" else []


def _target(args: argparse.Namespace, device: torch.device, comparison: dict[str, Any]) -> dict[str, Any] | None:
    if args.arch != "sd14" or args.image_size != 512 or device.type != "cpu" or "fit" not in comparison:
        return None
    fit_ratio = comparison["fit"]["ratio_wall"]
    diff = comparison["locate"]["points_max_diff_px"] if "locate" in comparison else None
    return {
        "fit_ratio_wall": fit_ratio, "fit_ratio_cpu": comparison["fit"]["ratio_cpu"],
        "fit_ratio_limit": TARGET_FIT_RATIO, "fit_ratio_met": fit_ratio is not None and fit_ratio <= TARGET_FIT_RATIO,
        "points_max_diff_px": diff, "points_limit_px": TARGET_POINTS_PX,
        "points_met": None if diff is None else diff <= TARGET_POINTS_PX,
    }


def _log(args: argparse.Namespace, message: str) -> None:
    if args.verbose:
        print(message, file=sys.stderr, flush=True)


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("tiny", "sd14"), default="tiny",
                        help="tiny: LDM.tiny(); sd14: the full SD 1.x architecture with random weights")
    parser.add_argument("--points", type=int, default=4, help="query points (default 4)")
    parser.add_argument("--restarts", type=int, default=1, help="restarts per point (default 1; the paper uses 5)")
    parser.add_argument("--steps", type=int, default=1, help="fit steps measured (default 1: the time per step)")
    parser.add_argument("--crops", type=int, default=5,
                        help="locate crop iterations measured (default 5: the 4 corners and one later crop)")
    parser.add_argument("--image-size", type=int, default=512, help="model resolution (default 512)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; medians are reported")
    parser.add_argument("--warmup", type=int, default=None,
                        help="unreported rounds first (default 1 for tiny, 0 for sd14)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="samples per UNet call on the fast path (default: vidcorr's automatic budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--what", type=_csv(str), default=["fit", "locate"], help="fit,locate (default both)")
    parser.add_argument("--fast-levers", type=_csv(str), default=[],
                        help=f"prototype levers for the fast path, comma-separated: {', '.join(LEVERS)}")
    parser.add_argument("--baseline", action="store_true",
                        help="with --fast-levers, also alternate the fast path without them (the levers' effect)")
    parser.add_argument("--compile", action="store_true",
                        help="fast path on a torch.compile'd copy of the model (LDM.compile); one untimed warm-up call")
    parser.add_argument("--autocast", choices=("none", "float16", "bfloat16"), default="none",
                        help="fast path under torch.autocast in this dtype (LDM.set_autocast; float32 weights)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the whole run")
    parser.add_argument("--breakdown", action="store_true", help="time the pieces of one step instead")
    parser.add_argument("--batches", type=_csv(int), default=None,
                        help="breakdown batch sizes (default 1 and points x restarts)")
    parser.add_argument("--pieces", type=_csv(str), default=None,
                        help="breakdown pieces to run, comma-separated fnmatch patterns (default all)")
    parser.add_argument("--variants", type=_csv(str), default=None,
                        help="time the fast path under each variant instead, against the first: PRECISION[+LAYOUT...]"
                        f" with PRECISION in {', '.join(AUTOCASTS)} and LAYOUT in {', '.join(LAYOUTS)} "
                        "(e.g. fp32,bf16,bf16+unet_cl)")
    parser.add_argument("--labels", type=_csv(int), default=None,
                        help="time the joint fit with K labels per point against K separate fits instead, for each "
                        "K given (e.g. 1,2,4)")
    parser.add_argument("--quick", action="store_true",
                        help="seconds, to check the harness: defaults become --arch tiny --image-size 64 --repeats 1 "
                        "--warmup 0 --threads 1 --device cpu (times mean nothing)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each timed call to stderr")
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        # Defaults only: an option given beside --quick still wins.
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    modes = [name for name in ("breakdown", "variants", "labels") if getattr(args, name)]
    if len(modes) > 1:
        parser.error(f"choose one mode: --{modes[0]} or --{modes[1]}")
    if args.variants is not None:
        if not args.variants:
            parser.error("--variants takes at least one variant")
        for text in args.variants:
            try:
                Variant.parse(text)
            except ValueError as exc:
                parser.error(str(exc))
    if args.labels is not None and (not args.labels or min(args.labels) < 1):
        parser.error(f"--labels takes label counts >= 1, got {','.join(map(str, args.labels)) or 'none'}")
    for name in ("points", "restarts", "steps", "crops", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    unknown = sorted(set(args.what) - {"fit", "locate"})
    if unknown or not args.what:
        parser.error(f"--what takes fit and/or locate, got {','.join(args.what)}")
    unknown = sorted(set(args.fast_levers) - set(LEVERS))
    if unknown:
        parser.error(f"unknown --fast-levers {unknown}; choose from {', '.join(LEVERS)}")
    if args.labels is not None and (not args.labels or min(args.labels) < 1):
        parser.error(f"--labels takes counts >= 1, got {args.labels}")
    if args.warmup is None:
        args.warmup = 1 if args.arch == "tiny" else 0
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its table and return (and optionally write) the JSON report."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads)  # main() may be called in a process that goes on (tests)


def _run(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    device = resolve_device(args.device)
    dtype = DTYPES[args.dtype]
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "verbose")}
    settings.update(device=str(device), dtype=args.dtype)
    command_args = sys.argv[1:] if argv is None else argv
    report: dict[str, Any] = {
        "benchmark": "benchmarks.speed", "command": " ".join(["python -m benchmarks.speed", *command_args]),
        "machine": machine_info(device), "settings": settings,
    }
    # Without the joint fit there is nothing to time: say so before building a model (SD takes seconds and GBs).
    skip_labels = bool(args.labels) and find_fit_labels() is None
    if not skip_labels:
        start = time.perf_counter()
        ldm = build_model(args.arch, device, dtype)
        report.update(model_build_s=time.perf_counter() - start, model_parameters=ldm.num_parameters)
    if skip_labels:
        report["labels"] = {"skipped": LABELS_MISSING}
        report["notes"] = []
    elif args.breakdown:
        report["breakdown"] = run_breakdown(args, ldm)
        report["notes"] = []
    elif args.variants:
        report["variants"] = run_variants(args, ldm, device)
        report["notes"] = _mode_notes(args)
    elif args.labels:
        report["labels"] = run_labels(args, ldm, device)
        report["notes"] = _mode_notes(args)
    else:
        comparison = run_comparison(args, ldm, device)
        report["comparison"] = comparison
        report["notes"] = _notes(args, comparison)
        report["target"] = _target(args, device, comparison)
        if device.type != "cuda":
            report["notes"].append("GPU targets (fp16 paper fit of 10 points <= 60 s, fast tracking >= 10 frames/s, "
                                   "<= 20 GB) pending: no GPU on this machine")
    print(format_report(report))
    if args.json:
        from vidcorr.io.atomic import atomic_path

        with atomic_path(args.json) as out, open(out, "w") as f:
            json.dump(report, f, indent=2, default=_json_default)
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


if __name__ == "__main__":
    main()
