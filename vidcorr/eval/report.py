"""Merge results files into PCK tables, with the paper's published numbers beside ours.

:func:`build_report` reads any number of results files or run folders (shards, resumed runs), merges them
(one line per pair id; two different predictions for one pair is an error, see
``vidcorr.eval.results.merge_results``) and computes, per benchmark found and per protocol (both are always
scored), the per-image and per-keypoint PCK at every alpha: pooled, per category, the unweighted mean over
categories, and per level of each SPair difficulty flag. :func:`report_tables` lays them out as tables,
which :func:`report_markdown` and the CLI's rich tables both render, so the two never disagree.

The "paper" column holds Hedlin et al. 2023's published PCK (SD 1.4, the seed's protocol) at 0.05 and
0.10, beside our seed-protocol per-image PCK, the number the seed's evaluation prints as PCK.

TAP-Vid results files (``tapvid*.jsonl``, see ``vidcorr.eval.tapvid_results``) are merged too (one line per
video), grouped by dataset, query mode, resolution and labels per query (K-label runs apart from tapnet's
protocol, titled so and without reference rows): a table of the mean over videos (tapnet's protocol) beside
other trackers' published numbers, the per-threshold means, and a per-video table. Hedlin et al.
report no TAP-Vid numbers; the reference rows are other methods', for scale only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs.pck import PairScore, PCKProtocol, PCKSummary, PCKValues, summarize
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr.eval.tapvid.metrics import THRESHOLDS_PX, mean_over_videos
from vidcorr.eval.tapvid.results import BENCHMARK as TAPVID
from vidcorr.eval.tapvid.results import TAPVID_RECORDS, VideoScore
from vidcorr.io.atomic import write_text
from vidcorr.runs.folder import setups_by

PAPER_PCK: dict[str, dict[float, float]] = {
    "spair": {0.05: 28.9, 0.1: 45.4},
    "pfwillow": {0.05: 53.0, 0.1: 84.3},
    "cub": {0.05: 61.6, 0.1: 77.5},
}
"""Hedlin et al. 2023 (NeurIPS), SD 1.4, the seed's PCK protocol: benchmark -> alpha -> percent."""

SEED_PROTOCOL_NOTES: dict[str, str] = {
    "spair": "seed = the seed's scoring: images squashed to 512x512, threshold = the SOURCE box's longer side "
             "squashed by the source's size.",
    "pfwillow": "seed = the seed's scoring: images squashed to 512x512, threshold = max(max - min) of the TARGET "
                "keypoints padded with -1 up to 40; the -1 enters the minimum, so the threshold spans (-1, -1) to "
                "the keypoints' far corner, wider than their extent: the seed's PCK is more lenient than with "
                "the keypoints' own extent.",
    "cub": "seed = the seed's scoring: images squashed to 512x512, threshold = the TARGET box's longer side x "
           "512 / W_target (the x scale only): on images taller than wide the threshold exceeds the squashed "
           "box's side (more lenient), on wider ones a tall box's threshold falls short of it (stricter).",
}
"""One line per benchmark: what the seed protocol measures, and what its quirks do to the numbers."""


def protocol_note(dataset: str) -> str:
    """The protocols of `dataset`'s tables, and where the paper's numbers belong, in one paragraph."""
    official = ("official = the TARGET box's longer side" if dataset != "pfwillow"
                else "official = the valid TARGET keypoints' extent") + ", original target pixels"
    seed = SEED_PROTOCOL_NOTES.get(dataset, "seed = the seed's own scoring.")
    return (f"Protocols: {official}; {seed} Paper: Hedlin et al. 2023, SD 1.4, seed protocol; shown beside "
            "seed / per image only.")


BENCHMARK_NAMES = {"spair": "SPair-71k", "pfwillow": "PF-Willow", "cub": "CUB-200-2011"}
FULL_SPLIT_PAIRS = {("spair", "test"): 12234, ("pfwillow", "test"): 900}
"""Pairs in the full split, to say how much of it a report covers."""

TAPVID_NAMES = {"davis": "TAP-Vid-DAVIS", "kinetics": "TAP-Vid-Kinetics", "rgb_stacking": "TAP-Vid-RGB-Stacking"}
TAPVID_FULL_VIDEOS = {"davis": 30, "rgb_stacking": 50}
"""Videos in the full dataset (tapnet's README: the 30 DAVIS-val videos, 50 RGB-Stacking videos)."""


@dataclass(frozen=True)
class TapVidReference:
    """Another tracker's published TAP-Vid numbers (percent), shown for scale beside ours."""

    method: str
    source: str
    average_jaccard: float
    delta_avg: float
    occlusion_accuracy: float


# OTHER METHODS' numbers, for reference only: Hedlin et al. 2023 (the method vidcorr implements) publish no
# TAP-Vid results. AJ, <delta^x_avg (tapnet's average_pts_within_thresh) and OA in percent, 256x256, keyed by
# (dataset, query mode).
# - TAPIR, query_first: Doersch et al., "TAPIR: Tracking Any Point with per-frame Initialization and temporal
#   Refinement", ICCV 2023 (arXiv:2306.08637), main TAP-Vid comparison table. TAPIR, DAVIS strided: as quoted
#   in Karaev et al., "CoTracker: It is Better to Track Together" (arXiv:2307.07635v1), Table 1.
# - CoTracker2: facebookresearch/co-tracker README, "numbers that you should be able to reproduce using the
#   released checkpoint" (CoTracker2, 27.12.23).
_TAPIR = "Doersch et al. 2023 (TAPIR, ICCV)"
_TAPIR_STRIDED = "TAPIR as quoted by Karaev et al. 2023 (CoTracker, arXiv:2307.07635v1, Table 1)"
_COTRACKER2 = "facebookresearch/co-tracker README (CoTracker2 checkpoint of 27.12.23)"
TAPVID_REFERENCE: dict[tuple[str, str], tuple[TapVidReference, ...]] = {
    ("davis", "first"): (TapVidReference("TAPIR", _TAPIR, 56.2, 70.0, 86.5),
                         TapVidReference("CoTracker2", _COTRACKER2, 60.9, 75.4, 88.4)),
    ("davis", "strided"): (TapVidReference("TAPIR", _TAPIR_STRIDED, 61.3, 73.6, 88.8),
                           TapVidReference("CoTracker2", _COTRACKER2, 65.1, 79.0, 89.4)),
    ("kinetics", "first"): (TapVidReference("TAPIR", _TAPIR, 49.6, 64.2, 85.0),),
}
TAPVID_REFERENCE_NOTE = ("reference rows are OTHER trackers' published numbers, for scale only: Hedlin et al. 2023 "
                         "publish no TAP-Vid results")

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
_PROTOCOLS = tuple(p.value for p in PCKProtocol)
_MEASURES = (("per image", "per_image"), ("per keypoint", "per_keypoint"))


@dataclass(frozen=True)
class BenchmarkReport:
    """One benchmark's tables.

    Attributes:
        dataset: ``spair``, ``pfwillow`` or ``cub``.
        num_pairs, num_keypoints: merged pairs and their keypoints.
        alphas: the alphas of every tuple in `summaries`.
        summaries: protocol name -> its PCK tables.
        paper: alpha -> the published PCK (seed protocol), for the alphas that have one.
        setup: the run's ``run.json`` (model, config, split, ...), or None where no run folder had one.
    """

    dataset: str
    num_pairs: int
    num_keypoints: int
    alphas: tuple[float, ...]
    summaries: dict[str, PCKSummary]
    paper: dict[float, float]
    setup: dict[str, Any] | None


@dataclass(frozen=True)
class TapVidReport:
    """One TAP-Vid group (dataset, query mode, resolution, labels per query): per-video scores and their mean.

    Attributes:
        dataset, query_mode, full_res: the group; labels: K labels per query (1: tapnet's protocol).
        scores: merged per-video scores, by video name.
        mean: metric -> mean over videos, fraction in [0, 1] (tapnet's protocol; NaN if any video has NaN).
        references: other trackers' published numbers for this dataset and query mode.
        setup: the run's ``run.json``, or None where no run folder had one.
    """

    dataset: str
    query_mode: str
    full_res: bool
    scores: tuple[VideoScore, ...]
    mean: dict[str, float]
    references: tuple[TapVidReference, ...]
    setup: dict[str, Any] | None
    labels: int = 1


@dataclass(frozen=True)
class Report:
    """The merged results of `files`: one :class:`BenchmarkReport` per pair benchmark found, sorted by name,
    and one :class:`TapVidReport` per TAP-Vid group found."""

    files: tuple[str, ...]
    benchmarks: tuple[BenchmarkReport, ...]
    tapvid: tuple[TapVidReport, ...] = ()


@dataclass(frozen=True)
class TableData:
    """A table as text cells, for markdown and rich alike; `protocol` is None for mixed tables."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    protocol: str | None = None


def collect_results_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Results files from `paths`: files as they are, folders as their ``results*.jsonl``.

    Raises:
        InputError: no path given. DataError: a path that does not exist, or a folder without results.
    """
    found: list[Path] = []
    given = [Path(p) for p in paths]
    if not given:
        raise InputError("give at least one results file or run folder")
    for path in given:
        if path.is_dir():
            inside = sorted({*PAIR_RECORDS.results_files(path), *TAPVID_RECORDS.results_files(path)})
            if not inside:
                raise DataError(f"{path}: no {PAIR_RECORDS.glob} results files in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path}: results file or folder not found")
    return list(dict.fromkeys(found))


def summarize_benchmark(dataset: str, scores: list[PairScore], setup: dict[str, Any] | None = None
                        ) -> BenchmarkReport:
    """The tables of one benchmark's scores under every protocol they were scored with."""
    protocols = [p for p in _PROTOCOLS if all(p in s.correct for s in scores)]
    if not protocols:
        raise DataError(f"{dataset} results share no PCK protocol")
    summaries = {p: summarize(scores, p) for p in protocols}
    alphas = summaries[protocols[0]].alphas
    paper = {a: v for a, v in PAPER_PCK.get(dataset, {}).items() if any(abs(a - b) < 1e-12 for b in alphas)}
    return BenchmarkReport(dataset, len(scores), sum(s.num_keypoints for s in scores), tuple(alphas), summaries,
                           paper, setup)


def summarize_tapvid(scores: Iterable[VideoScore], setups: dict[Any, dict[str, Any]] | None = None
                     ) -> tuple[TapVidReport, ...]:
    """Group video scores by (dataset, query mode, full_res, labels per query) and average each group over its
    videos. Other trackers' numbers are shown beside the standard protocol's groups only (one label per query)."""
    groups: dict[tuple[str, str, bool, int], list[VideoScore]] = {}
    for score in scores:
        groups.setdefault(score.group, []).append(score)
    reports = []
    for key in sorted(groups):
        dataset, query_mode, full_res, labels = key
        videos = sorted(groups[key], key=lambda s: s.video)
        references = TAPVID_REFERENCE.get((dataset, query_mode), ()) if labels == 1 else ()
        reports.append(TapVidReport(dataset, query_mode, full_res, tuple(videos),
                                    mean_over_videos([s.metrics for s in videos]), references,
                                    (setups or {}).get(key), labels))
    return tuple(reports)


def build_report(paths: Iterable[str | os.PathLike]) -> Report:
    """Merge the results files or run folders `paths` and compute every table (see the module docstring).

    Pair-benchmark and TAP-Vid results files may be given together; each kind is merged with its own kind.

    Raises:
        InputError: no paths. DataError: a missing or corrupt file, conflicting predictions for one pair or
            video, folders with different setups, or no results at all.
    """
    files = collect_results_files(paths)
    tapvid_files = [f for f in files if TAPVID_RECORDS.holds(f)]
    pair_files = [f for f in files if f not in tapvid_files]
    scores = PAIR_RECORDS.merge(pair_files) if pair_files else []
    videos = TAPVID_RECORDS.merge(tapvid_files) if tapvid_files else []
    if not scores and not videos:
        raise DataError(f"no pair or TAP-Vid results in {', '.join(str(f) for f in files)}")
    # A benchmark's folders must agree on their setup; TAP-Vid's per (dataset, query mode, resolution).
    setups = setups_by((f.parent for f in pair_files), lambda setup: str(setup.get("benchmark")))
    tapvid_setups = setups_by((f.parent for f in tapvid_files), lambda setup: (
        str(setup.get("dataset")), str(setup.get("query_mode")), bool(setup.get("full_res")),
        int(setup.get("labels", 1))) if setup.get("benchmark") == TAPVID else None)
    by_dataset: dict[str, list[PairScore]] = {}
    for score in scores:
        by_dataset.setdefault(score.dataset, []).append(score)
    benchmarks = tuple(summarize_benchmark(name, group, setups.get(name)) for name, group in sorted(by_dataset.items()))
    return Report(tuple(str(f) for f in files), benchmarks, summarize_tapvid(videos, tapvid_setups))


# --------------------------------------------------------------------------------------------- layout


def _pct(value: float) -> str:
    return f"{value:.1f}"


def _alpha(a: float) -> str:
    return f"{a:.2f}".rstrip("0").rstrip(".") if a >= 0.01 else f"{a:g}"


def _value_headers(alphas: tuple[float, ...]) -> tuple[str, ...]:
    return tuple(f"{label} @{_alpha(a)}" for label, _ in _MEASURES for a in alphas)


def _values(values: PCKValues) -> tuple[str, ...]:
    return tuple(_pct(v) for _, attr in _MEASURES for v in getattr(values, attr))


def title_of(bench: BenchmarkReport) -> str:
    """``SPair-71k (test)``: the benchmark and, where known, its split."""
    name = BENCHMARK_NAMES.get(bench.dataset, bench.dataset)
    split = (bench.setup or {}).get("split")
    return f"{name} ({split})" if split else name


def coverage(bench: BenchmarkReport) -> str:
    """``12 pairs, 40 keypoints`` and, for a partial known split, how much of it that is."""
    text = f"{bench.num_pairs:,} pairs, {bench.num_keypoints:,} keypoints"
    full = FULL_SPLIT_PAIRS.get((bench.dataset, str((bench.setup or {}).get("split"))))
    if full is not None and bench.num_pairs < full:
        text += f" (of {full:,} in the full split: incomplete)"
    return text


def summary_table(bench: BenchmarkReport) -> TableData:
    """Pooled PCK per protocol and measure, with the paper's numbers beside the seed's per-image PCK."""
    alphas = bench.alphas
    headers = ("protocol", "measure", *(f"PCK@{_alpha(a)}" for a in alphas),
               *(f"paper @{_alpha(a)}" for a in alphas))
    rows = []
    for protocol, summary in bench.summaries.items():
        for label, attr in _MEASURES:
            paper = [""] * len(alphas)
            if protocol == PCKProtocol.SEED.value and attr == "per_image":
                paper = [_pct(bench.paper[a]) if a in bench.paper else "" for a in alphas]
            rows.append((protocol, label, *(_pct(v) for v in getattr(summary.overall, attr)), *paper))
        rows.append((protocol, "mean over categories", *(_pct(v) for v in summary.category_mean),
                     *([""] * len(alphas))))
    return TableData(f"{title_of(bench)}: PCK (%)", headers, tuple(rows))


def category_table(bench: BenchmarkReport, protocol: str) -> TableData:
    """Per-category PCK under `protocol`, per image and per keypoint, with a pooled last row."""
    summary = bench.summaries[protocol]
    rows = [(name, str(v.num_pairs), str(v.num_keypoints), *_values(v)) for name, v in summary.per_category.items()]
    overall = summary.overall
    rows.append(("all", str(overall.num_pairs), str(overall.num_keypoints), *_values(overall)))
    return TableData(f"{title_of(bench)} per category, {protocol} protocol",
                     ("category", "pairs", "keypoints", *_value_headers(bench.alphas)), tuple(rows), protocol)


def flag_table(bench: BenchmarkReport, protocol: str) -> TableData | None:
    """PCK per level of each difficulty flag (SPair) under `protocol`; None where pairs carry no flags."""
    summary = bench.summaries[protocol]
    if not summary.per_flag:
        return None
    rows = [(name.replace("_", " "), str(level), str(v.num_pairs), str(v.num_keypoints), *_values(v))
            for name, levels in summary.per_flag.items() for level, v in levels.items()]
    return TableData(f"{title_of(bench)} by difficulty, {protocol} protocol",
                     ("flag", "level", "pairs", "keypoints", *_value_headers(bench.alphas)), tuple(rows), protocol)


def report_tables(bench: BenchmarkReport, protocols: Iterable[str] | None = None) -> list[TableData]:
    """The summary table, then per protocol (all by default) the per-category and per-flag tables."""
    tables = [summary_table(bench)]
    for protocol in protocols or bench.summaries:
        if protocol not in bench.summaries:
            raise InputError(f"these results have no {protocol!r} PCK (they have {', '.join(bench.summaries)})")
        tables.append(category_table(bench, protocol))
        flags = flag_table(bench, protocol)
        if flags is not None:
            tables.append(flags)
    return tables


def setup_line(bench: BenchmarkReport) -> str | None:
    """``model X (fp16), preset fields ...``: the run's model and the config fields that matter most."""
    setup = bench.setup
    if not setup:
        return None
    config = setup.get("config", {})
    keys = ("image_size", "restarts", "num_steps", "crops", "seed")
    fields = ", ".join(f"{k} {config[k]}" for k in keys if k in config)
    return f"model {setup.get('model')} ({setup.get('dtype')}); {fields}"


# --------------------------------------------------------------------------------------------- TAP-Vid layout


def _pct_or_nan(fraction: float) -> str:
    return "nan" if math.isnan(fraction) else _pct(100.0 * fraction)


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def tapvid_title(rep: TapVidReport) -> str:
    """``TAP-Vid-DAVIS, query_first, 256x256`` (or ``strided``); full-resolution runs say how they were scored, and
    K-label runs ``3 labels per query (not scored)``."""
    resolution = "full resolution, scored at 256x256" if rep.full_res else "256x256"
    mode = "query_first" if rep.query_mode == "first" else rep.query_mode
    labels = f", {rep.labels} labels per query (not scored)" if rep.labels != 1 else ""
    return f"{TAPVID_NAMES.get(rep.dataset, rep.dataset)}, {mode}, {resolution}{labels}"


def tapvid_coverage(rep: TapVidReport) -> str:
    """``3 videos, 61 queries`` and, for a partial known dataset, how much of it that is."""
    queries = sum(s.num_queries for s in rep.scores)
    text = f"{_count(len(rep.scores), 'video')}, {_count(queries, 'query', 'queries')}"
    full = TAPVID_FULL_VIDEOS.get(rep.dataset)
    if full is not None and len(rep.scores) < full:
        text += f" (of {full:,} videos in the full dataset: incomplete)"
    return text


def tapvid_summary_table(rep: TapVidReport) -> TableData:
    """Our mean over videos of AJ, δ_avg and OA, then other trackers' published numbers (reference only; the
    source column only where there are references)."""
    ours = ("vidcorr (this run)", *(_pct_or_nan(rep.mean[m]) for m in
                                    ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")))
    headers: tuple[str, ...] = ("method", "AJ", "δ_avg", "OA")
    rows: list[tuple[str, ...]] = [ours]
    if rep.references:
        headers += ("source",)
        rows = [(*ours, "")] + [(f"{r.method} (reference, other method)", _pct(r.average_jaccard), _pct(r.delta_avg),
                                 _pct(r.occlusion_accuracy), r.source) for r in rep.references]
    return TableData(f"{tapvid_title(rep)}: mean over {_count(len(rep.scores), 'video')} (%)", headers, tuple(rows))


def tapvid_threshold_table(rep: TapVidReport) -> TableData:
    """Our mean Jaccard and fraction within d pixels at each threshold d (256x256 pixels)."""
    rows = (("Jaccard", *(_pct_or_nan(rep.mean[f"jaccard_{d}"]) for d in THRESHOLDS_PX),
             _pct_or_nan(rep.mean["average_jaccard"])),
            ("within d (δ)", *(_pct_or_nan(rep.mean[f"pts_within_{d}"]) for d in THRESHOLDS_PX),
             _pct_or_nan(rep.mean["average_pts_within_thresh"])))
    return TableData(f"{tapvid_title(rep)}: per threshold, mean over videos (%)",
                     ("metric", *(f"d={d}px" for d in THRESHOLDS_PX), "average"), rows)


def tapvid_video_table(rep: TapVidReport) -> TableData:
    """One row per video (frames, tracks, queries, AJ, δ_avg, OA), then the mean over videos."""
    def metrics(values: dict[str, float]) -> tuple[str, ...]:
        return tuple(_pct_or_nan(values[m]) for m in ("average_jaccard", "average_pts_within_thresh",
                                                       "occlusion_accuracy"))

    rows = [(s.video, str(s.num_frames), str(s.num_tracks), str(s.num_queries), *metrics(s.metrics))
            for s in rep.scores]
    rows.append((f"mean over {_count(len(rep.scores), 'video')}", "", "", str(sum(s.num_queries for s in rep.scores)),
                 *metrics(rep.mean)))
    return TableData(f"{tapvid_title(rep)} per video (%)",
                     ("video", "frames", "tracks", "queries", "AJ", "δ_avg", "OA"), tuple(rows))


def tapvid_tables(rep: TapVidReport) -> list[TableData]:
    """The summary (with reference rows), per-threshold and per-video tables of one TAP-Vid group."""
    return [tapvid_summary_table(rep), tapvid_threshold_table(rep), tapvid_video_table(rep)]


def tapvid_setup_line(rep: TapVidReport) -> str | None:
    """``model X (fp16); image_size ...; visibility threshold 0.5``, from the run's ``run.json``."""
    if not rep.setup:
        return None
    config = rep.setup.get("config", {})
    keys = ("image_size", "restarts", "num_steps", "crops", "seed")
    fields = ", ".join(f"{k} {config[k]}" for k in keys if k in config)
    return (f"model {rep.setup.get('model')} ({rep.setup.get('dtype')}); {fields}; visibility threshold "
            f"{rep.setup.get('visibility_threshold')}")


# --------------------------------------------------------------------------------------------- outputs


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", "") or "0")
    except ValueError:
        return False
    return True


def _markdown_table(table: TableData) -> str:
    numeric = [all(_is_number(row[i]) for row in table.rows) for i in range(len(table.headers))]
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
    lines += ["| " + " | ".join(cell or "" for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def report_markdown(report: Report) -> str:
    """The whole report as markdown: per benchmark, every table of :func:`report_tables`."""
    parts = ["# vidcorr eval report", ""]
    for bench in report.benchmarks:
        parts += [f"## {title_of(bench)}", "", coverage(bench) + "."]
        line = setup_line(bench)
        if line:
            parts.append(line + ".")
        parts += ["", protocol_note(bench.dataset), ""]
        for table in report_tables(bench):
            parts += [_markdown_table(table), ""]
    for rep in report.tapvid:
        parts += [f"## {tapvid_title(rep)}", "", tapvid_coverage(rep) + "."]
        line = tapvid_setup_line(rep)
        if line:
            parts.append(line + ".")
        parts += ["", "Metrics as tapnet's compute_tapvid_metrics, one score per video, then the mean over videos: "
                  "AJ = average Jaccard over d in 1, 2, 4, 8, 16 pixels; δ_avg = fraction of visible points "
                  f"within d, averaged over d; OA = occlusion accuracy. The {TAPVID_REFERENCE_NOTE}.", ""]
        for table in tapvid_tables(rep):
            parts += [_markdown_table(table), ""]
    parts += ["Results files: " + ", ".join(f"`{f}`" for f in report.files), ""]
    return "\n".join(parts)


def _values_json(values: PCKValues, alphas: tuple[float, ...]) -> dict[str, Any]:
    return {
        "per_image": {repr(a): v for a, v in zip(alphas, values.per_image, strict=True)},
        "per_keypoint": {repr(a): v for a, v in zip(alphas, values.per_keypoint, strict=True)},
        "num_pairs": values.num_pairs,
        "num_keypoints": values.num_keypoints,
    }


def _summary_json(summary: PCKSummary) -> dict[str, Any]:
    alphas = summary.alphas
    return {
        "overall": _values_json(summary.overall, alphas),
        "category_mean": {repr(a): v for a, v in zip(alphas, summary.category_mean, strict=True)},
        "per_category": {name: _values_json(v, alphas) for name, v in summary.per_category.items()},
        "per_flag": {name: {str(level): _values_json(v, alphas) for level, v in levels.items()}
                     for name, levels in summary.per_flag.items()},
    }


def _percent_json(metrics: dict[str, float]) -> dict[str, float | None]:
    return {name: None if math.isnan(value) else 100.0 * value for name, value in metrics.items()}


def _tapvid_json(rep: TapVidReport) -> dict[str, Any]:
    return {
        "name": TAPVID_NAMES.get(rep.dataset, rep.dataset),
        "dataset": rep.dataset,
        "query_mode": rep.query_mode,
        "full_res": rep.full_res,
        "labels": rep.labels,
        "num_videos": len(rep.scores),
        "num_queries": sum(s.num_queries for s in rep.scores),
        "mean": _percent_json(rep.mean),
        "per_video": {s.video: {"num_frames": s.num_frames, "num_tracks": s.num_tracks, "num_queries": s.num_queries,
                                "metrics": _percent_json(s.metrics)} for s in rep.scores},
        "reference": {"note": TAPVID_REFERENCE_NOTE,
                      "methods": [{"method": r.method, "source": r.source, "average_jaccard": r.average_jaccard,
                                   "average_pts_within_thresh": r.delta_avg,
                                   "occlusion_accuracy": r.occlusion_accuracy} for r in rep.references]},
        "setup": rep.setup,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-able dict: per benchmark, per protocol, every PCK (percent), alphas as keys; and
    (key ``tapvid``, only when there are TAP-Vid results) per TAP-Vid group the mean and per-video metrics in
    percent (null for NaN) with the reference numbers."""
    data = {
        "version": 1,
        "files": list(report.files),
        "benchmarks": {
            bench.dataset: {
                "name": BENCHMARK_NAMES.get(bench.dataset, bench.dataset),
                "num_pairs": bench.num_pairs,
                "num_keypoints": bench.num_keypoints,
                "alphas": list(bench.alphas),
                "paper": {"source": "Hedlin et al. 2023, SD 1.4, seed protocol, per image",
                          "pck": {repr(a): v for a, v in bench.paper.items()}},
                "setup": bench.setup,
                "protocols": {name: _summary_json(s) for name, s in bench.summaries.items()},
            }
            for bench in report.benchmarks
        },
    }
    if report.tapvid:
        data["tapvid"] = [_tapvid_json(rep) for rep in report.tapvid]
    return data


def write_report(report: Report, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into `out_dir` (created if needed); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return (write_text(out_dir / REPORT_JSON, json.dumps(report_json(report), indent=2) + "\n"),
            write_text(out_dir / REPORT_MD, report_markdown(report)))
