"""TAP-Vid's report section: per (dataset, query mode, resolution), the mean over videos beside other trackers'.

TAP-Vid results (``tapvid*.jsonl``, see ``vidcorr.eval.tapvid.results``) are merged (one line per video) and
grouped by dataset, query mode, resolution and labels per query (K-label runs apart from tapnet's protocol,
titled so and without reference rows): a table of the mean over videos (tapnet's protocol) beside other
trackers' published numbers, the per-threshold means, a per-video table, and a picture of the fraction
of points within d pixels against d. Hedlin et al. report no TAP-Vid numbers; the reference rows are other
methods', for scale only. A :class:`TapVidReport` is one group's :class:`~vidcorr.eval.tables.Section`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from vidcorr.eval.tables import Anchor, Figure, Series, TableData, count, model_fields, pct
from vidcorr.eval.tapvid.metrics import THRESHOLDS_PX, mean_over_videos
from vidcorr.eval.tapvid.results import BENCHMARK, TAPVID_RECORDS, VideoScore

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
_SUMMARY = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")


def _pct_or_nan(fraction: float) -> str:
    return "nan" if math.isnan(fraction) else pct(100.0 * fraction)


def _percent_json(metrics: dict[str, float]) -> dict[str, float | None]:
    return {name: None if math.isnan(value) else 100.0 * value for name, value in metrics.items()}


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

    kind: ClassVar[str] = "tapvid"
    dataset: str
    query_mode: str
    full_res: bool
    scores: tuple[VideoScore, ...]
    mean: dict[str, float]
    references: tuple[TapVidReference, ...]
    setup: dict[str, Any] | None
    labels: int = 1

    @property
    def slug(self) -> str:
        return (f"tapvid-{self.dataset}-{self.query_mode}" + ("-fullres" if self.full_res else "")
                + (f"-labels{self.labels}" if self.labels != 1 else ""))

    def title(self) -> str:
        """``TAP-Vid-DAVIS, query_first, 256x256`` (or ``strided``); full-resolution runs say how they were
        scored, and K-label runs ``3 labels per query (not scored)``."""
        resolution = "full resolution, scored at 256x256" if self.full_res else "256x256"
        mode = "query_first" if self.query_mode == "first" else self.query_mode
        labels = f", {self.labels} labels per query (not scored)" if self.labels != 1 else ""
        return f"{TAPVID_NAMES.get(self.dataset, self.dataset)}, {mode}, {resolution}{labels}"

    def coverage(self) -> str:
        """``3 videos, 61 queries`` and, for a partial known dataset, how much of it that is."""
        queries = sum(s.num_queries for s in self.scores)
        text = f"{count(len(self.scores), 'video')}, {count(queries, 'query', 'queries')}"
        full = TAPVID_FULL_VIDEOS.get(self.dataset)
        if full is not None and len(self.scores) < full:
            text += f" (of {full:,} videos in the full dataset: incomplete)"
        return text

    def setup_line(self) -> str | None:
        """``model X (fp16); image_size ...; visibility threshold 0.5``, from the run's ``run.json``."""
        if not self.setup:
            return None
        return f"{model_fields(self.setup)}; visibility threshold {self.setup.get('visibility_threshold')}"

    def protocols(self) -> tuple[str, ...]:
        return ()

    def notes(self) -> list[str]:
        return ["Metrics as tapnet's compute_tapvid_metrics, one score per video, then the mean over videos: "
                "AJ = average Jaccard over d in 1, 2, 4, 8, 16 pixels; δ_avg = fraction of visible points "
                f"within d, averaged over d; OA = occlusion accuracy. The {TAPVID_REFERENCE_NOTE}."]

    def tables(self, protocols: list[str] | None = None) -> list[TableData]:
        """The summary (with reference rows), per-threshold and per-video tables (one protocol: tapnet's)."""
        return [summary_table(self), threshold_table(self), video_table(self)]

    def figure(self) -> Figure:
        """Mean fraction of visible points within d pixels against d; δ_avg (the mean over d), ours and other
        trackers' (they publish no per-threshold numbers), as dashed lines."""
        ys = tuple(100.0 * self.mean[f"pts_within_{d}"] for d in THRESHOLDS_PX)
        series = (Series("vidcorr, points within d", tuple(float(d) for d in THRESHOLDS_PX), ys),)
        ours = 100.0 * self.mean["average_pts_within_thresh"]
        anchors = ((Anchor("vidcorr δ_avg (mean over d)", None, ours),) if math.isfinite(ours) else ()) + tuple(
            Anchor(f"{r.method} δ_avg (reference, other method)", None, r.delta_avg, 1) for r in self.references)
        return Figure(f"{self.title()}: points within d pixels", "d (pixels, 256x256)", "within d (%)", series,
                      anchors, x_ticks=tuple(float(d) for d in THRESHOLDS_PX), log_x=True)

    def json_entry(self) -> dict[str, Any]:
        return {
            "name": TAPVID_NAMES.get(self.dataset, self.dataset),
            "dataset": self.dataset,
            "query_mode": self.query_mode,
            "full_res": self.full_res,
            "labels": self.labels,
            "num_videos": len(self.scores),
            "num_queries": sum(s.num_queries for s in self.scores),
            "mean": _percent_json(self.mean),
            "per_video": {s.video: {"num_frames": s.num_frames, "num_tracks": s.num_tracks,
                                    "num_queries": s.num_queries, "metrics": _percent_json(s.metrics)}
                          for s in self.scores},
            "reference": {"note": TAPVID_REFERENCE_NOTE,
                          "methods": [{"method": r.method, "source": r.source, "average_jaccard": r.average_jaccard,
                                       "average_pts_within_thresh": r.delta_avg,
                                       "occlusion_accuracy": r.occlusion_accuracy} for r in self.references]},
            "setup": self.setup,
        }


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


def tapvid_sections(files: list[Path], setups: dict[Hashable, dict[str, Any]]) -> tuple[TapVidReport, ...]:
    """The merged TAP-Vid results of `files`, one section per group; `setups`: group -> its ``run.json``."""
    return summarize_tapvid(TAPVID_RECORDS.merge(files), setups)


def tapvid_setup_group(setup: dict[str, Any]) -> Hashable | None:
    """The group a TAP-Vid run's ``run.json`` belongs to, (dataset, query mode, full_res, labels); None for
    others."""
    if setup.get("benchmark") != BENCHMARK:
        return None
    return (str(setup.get("dataset")), str(setup.get("query_mode")), bool(setup.get("full_res")),
            int(setup.get("labels", 1)))


def summary_table(rep: TapVidReport) -> TableData:
    """Our mean over videos of AJ, δ_avg and OA, then other trackers' published numbers (reference only; the
    source column only where there are references)."""
    ours = ("vidcorr (this run)", *(_pct_or_nan(rep.mean[m]) for m in _SUMMARY))
    headers: tuple[str, ...] = ("method", "AJ", "δ_avg", "OA")
    rows: list[tuple[str, ...]] = [ours]
    if rep.references:
        headers += ("source",)
        rows = [(*ours, "")] + [(f"{r.method} (reference, other method)", pct(r.average_jaccard), pct(r.delta_avg),
                                 pct(r.occlusion_accuracy), r.source) for r in rep.references]
    return TableData(f"{rep.title()}: mean over {count(len(rep.scores), 'video')} (%)", headers, tuple(rows))


def threshold_table(rep: TapVidReport) -> TableData:
    """Our mean Jaccard and fraction within d pixels at each threshold d (256x256 pixels)."""
    rows = (("Jaccard", *(_pct_or_nan(rep.mean[f"jaccard_{d}"]) for d in THRESHOLDS_PX),
             _pct_or_nan(rep.mean["average_jaccard"])),
            ("within d (δ)", *(_pct_or_nan(rep.mean[f"pts_within_{d}"]) for d in THRESHOLDS_PX),
             _pct_or_nan(rep.mean["average_pts_within_thresh"])))
    return TableData(f"{rep.title()}: per threshold, mean over videos (%)",
                     ("metric", *(f"d={d}px" for d in THRESHOLDS_PX), "average"), rows)


def video_table(rep: TapVidReport) -> TableData:
    """One row per video (frames, tracks, queries, AJ, δ_avg, OA), then the mean over videos."""
    def metrics(values: dict[str, float]) -> tuple[str, ...]:
        return tuple(_pct_or_nan(values[m]) for m in _SUMMARY)

    rows = [(s.video, str(s.num_frames), str(s.num_tracks), str(s.num_queries), *metrics(s.metrics))
            for s in rep.scores]
    rows.append((f"mean over {count(len(rep.scores), 'video')}", "", "", str(sum(s.num_queries for s in rep.scores)),
                 *metrics(rep.mean)))
    return TableData(f"{rep.title()} per video (%)",
                     ("video", "frames", "tracks", "queries", "AJ", "δ_avg", "OA"), tuple(rows))
