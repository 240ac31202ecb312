"""JHMDB's report section: PCK per row (CRW's protocol, with and without vidcorr's visibility; tapnet's), per
joint and per action, beside the frozen-feature methods' published numbers and a picture of PCK against alpha.

Records (``jhmdb*.jsonl``, see ``vidcorr.eval.jhmdb.results``) are merged (one line per (labels, video)) and
grouped by labels per joint: ``--labels K`` rows are a section of their own. A :class:`JhmdbReport` is one
group's :class:`~vidcorr.eval.tables.Section`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vidcorr.errors import InputError
from vidcorr.eval.jhmdb.data import FULL_TEST_VIDEOS, JOINTS
from vidcorr.eval.jhmdb.pck import (
    CURVE_ALPHAS,
    HEADLINE_ALPHAS,
    PROTOCOL_OF,
    SCORINGS,
    TABLE_ALPHAS,
    JointCounts,
    alpha_index,
    pool,
)
from vidcorr.eval.jhmdb.results import BENCHMARK, JHMDB_RECORDS, JhmdbScore
from vidcorr.eval.tables import Anchor, Figure, Series, TableData, alpha_label, count, model_fields, pct

PROTOCOLS: tuple[str, ...] = ("crw", "tapnet")
HEADLINE_ROW = {"crw": "crw", "tapnet": "tapnet"}
"""Protocol -> its headline row (every joint predicted on every frame)."""
ROW_NAMES = {
    "crw": "vidcorr, all joints (headline)",
    "crw_visibility": "vidcorr, absent joints dropped",
    "tapnet": "vidcorr, all joints",
}
"""Each row's name in tables; the notes say what the labelled ``crw_visibility`` row is."""


@dataclass(frozen=True)
class JhmdbAnchor:
    """A frozen-feature method's published JHMDB PCK (percent), and the protocol it was measured with."""

    method: str
    source: str
    protocol: str
    pck: dict[float, float]


JHMDB_ANCHORS: tuple[JhmdbAnchor, ...] = (
    JhmdbAnchor("Spa-then-Temp ResNet-50", "Spa-then-Temp README", "crw", {0.1: 66.4, 0.2: 84.4}),
    JhmdbAnchor("HVC", "HVC README", "crw", {0.1: 61.7, 0.2: 82.8}),
    JhmdbAnchor("raw DINOv2 ViT-B", "paper table, via issue 23", "crw", {0.1: 46.6}),
    JhmdbAnchor("CropMAE ViT-S/16", "paper table, via issue 23", "crw", {0.1: 43.5}),
)
"""Other methods' published numbers (all measured with CRW's protocol), for scale: Hedlin et al. 2023 publish no
JHMDB result. The last two come from papers' tables as the issue that asked for this benchmark quotes them."""


def _percent(value: float) -> str:
    return "nan" if math.isnan(value) else pct(value)


def _at(values: np.ndarray, alphas: tuple[float, ...] = TABLE_ALPHAS) -> tuple[str, ...]:
    return tuple(_percent(float(values[alpha_index(a)])) for a in alphas)


@dataclass(frozen=True)
class JhmdbReport:
    """One JHMDB group (labels per joint): merged per-video counts and their pools.

    Attributes:
        labels: K, labels per joint each video's method was given (1: the benchmark's protocol).
        scores: merged per-video records, by video name.
        pooled: row -> counts pooled over every video.
        per_action: action -> row -> counts pooled over its videos (actions sorted).
        setup: the run's ``run.json``, or None where no run folder had one.
    """

    kind: ClassVar[str] = "jhmdb"
    labels: int
    scores: tuple[JhmdbScore, ...]
    pooled: dict[str, JointCounts]
    per_action: dict[str, dict[str, JointCounts]]
    setup: dict[str, Any] | None

    @property
    def slug(self) -> str:
        return BENCHMARK if self.labels == 1 else f"{BENCHMARK}-labels{self.labels}"

    def title(self) -> str:
        suffix = "" if self.labels == 1 else f", {self.labels} labels per joint"
        return f"JHMDB keypoint propagation (split 1 test){suffix}"

    def coverage(self) -> str:
        frames = sum(s.num_frames for s in self.scores)
        text = f"{count(len(self.scores), 'video')}, {count(frames, 'frame')}"
        if len(self.scores) < FULL_TEST_VIDEOS:
            text += f" (of {FULL_TEST_VIDEOS} test videos: incomplete)"
        return text

    def setup_line(self) -> str | None:
        if not self.setup:
            return None
        return f"{model_fields(self.setup)}; visibility threshold {self.setup.get('visibility_threshold')}"

    def protocols(self) -> tuple[str, ...]:
        return PROTOCOLS

    def notes(self) -> list[str]:
        labels = ("Each joint is fitted on frame 1's ground truth (one embedding per joint, the 15 in one fit) and "
                  "tracked forward." if self.labels == 1 else
                  f"Each joint is fitted on {self.labels} labels (frame 1 and {self.labels - 1} evenly spaced later "
                  "frames, excluded from scoring), then tracked: not comparable with the published numbers.")
        return [
            labels + " PCK: a joint is correct at alpha if its error is at most alpha x 0.6 x the diagonal of the "
            "tight box around that frame's ground-truth joints; PCK per joint over every frame of every video, then "
            "the mean of the 15 per-joint values.",
            "Protocols: crw = CRW's eval_pck.py (frame 1 not scored; ground truth pos_img - 1, which here is "
            "pos_img - 0.5: MATLAB's 1-based pixel (1, 1) is vidcorr's top-left pixel centre (0.5, 0.5), distances "
            "equal). tapnet = tapnet's pck_evaluate (frame 1 scored; a joint outside frame 1 dropped for the whole "
            "clip; ground truth as stored, no 1-based shift). The headline predicts every joint on every frame; the "
            "labelled row drops the joints vidcorr predicts absent from the box and the score, as CRW does with a "
            "method's absent joints.",
            "Published rows are OTHER methods' numbers (frozen features, all measured with CRW's protocol), for "
            "scale: Hedlin et al. 2023 publish no JHMDB result. Compare them with the crw headline row. Sources: "
            "Spa-then-Temp's and HVC's repository READMEs; raw DINOv2 ViT-B and CropMAE ViT-S/16 from papers' "
            "tables as quoted in vidcorr issue 23 (not re-checked here).",
        ]

    def tables(self, protocols: list[str] | None = None) -> list[TableData]:
        """The summary (every row and the published ones), then per protocol (both by default) the per-joint
        and per-action tables of its headline row."""
        tables = [summary_table(self)]
        for protocol in protocols or PROTOCOLS:
            if protocol not in PROTOCOLS:
                raise InputError(f"JHMDB results have no {protocol!r} protocol (they have {', '.join(PROTOCOLS)})")
            tables += [joint_table(self, protocol), action_table(self, protocol)]
        return tables

    def figure(self) -> Figure:
        series = tuple(Series(f"{PROTOCOL_OF[row]} protocol: {ROW_NAMES[row]}", CURVE_ALPHAS,
                              tuple(float(v) for v in self.pooled[row].mean())) for row in SCORINGS)
        crw = SCORINGS.index("crw")
        anchors = tuple(Anchor(f"{a.method} (published, crw)", alpha, value, crw)
                        for a in JHMDB_ANCHORS for alpha, value in sorted(a.pck.items()))
        return Figure(f"{self.title()}: PCK against alpha", "alpha", "PCK (%), mean over 15 joints", series,
                      anchors if self.labels == 1 else (), x_ticks=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5))

    def json_entry(self) -> dict[str, Any]:
        def pcks(counts: JointCounts) -> dict[str, float]:
            return {repr(a): float(v) for a, v in zip(CURVE_ALPHAS, counts.mean(), strict=True)}

        return {
            "name": "JHMDB", "labels": self.labels, "num_videos": len(self.scores),
            "num_frames": sum(s.num_frames for s in self.scores), "alphas": list(CURVE_ALPHAS),
            "headline_alphas": list(HEADLINE_ALPHAS),
            "rows": {row: {"protocol": PROTOCOL_OF[row], "pck": pcks(self.pooled[row]),
                           "per_joint": {joint: {repr(a): float(v) for a, v in zip(CURVE_ALPHAS, values, strict=True)}
                                         for joint, values in zip(JOINTS, self.pooled[row].per_joint(), strict=True)},
                           "per_action": {action: pcks(rows[row]) for action, rows in self.per_action.items()}}
                     for row in SCORINGS},
            "published": [{"method": a.method, "source": a.source, "protocol": a.protocol,
                           "pck": {repr(k): v for k, v in a.pck.items()}} for a in JHMDB_ANCHORS],
            "per_video": {s.video: {"num_frames": s.num_frames, "label_frames": list(s.label_frames),
                                    "pck": {row: pcks(s.counts[row]) for row in SCORINGS}} for s in self.scores},
            "setup": self.setup,
        }


def summarize_jhmdb(scores: list[JhmdbScore], setups: dict[Hashable, dict[str, Any]] | None = None
                    ) -> tuple[JhmdbReport, ...]:
    """Group records by labels per joint and pool each group's counts, overall and per action."""
    groups: dict[int, list[JhmdbScore]] = {}
    for score in scores:
        groups.setdefault(score.labels, []).append(score)
    reports = []
    for labels in sorted(groups):
        videos = sorted(groups[labels], key=lambda s: s.video)
        actions: dict[str, list[JhmdbScore]] = {}
        for score in videos:
            actions.setdefault(score.action, []).append(score)
        pooled = {row: pool((s.counts for s in videos), row) for row in SCORINGS}
        per_action = {action: {row: pool((s.counts for s in group), row) for row in SCORINGS}
                      for action, group in sorted(actions.items())}
        reports.append(JhmdbReport(labels, tuple(videos), pooled, per_action, (setups or {}).get(labels)))
    return tuple(reports)


def jhmdb_sections(files: list[Path], setups: dict[Hashable, dict[str, Any]]) -> tuple[JhmdbReport, ...]:
    """The merged JHMDB results of `files`, one section per labels count; `setups`: labels -> ``run.json``."""
    return summarize_jhmdb(JHMDB_RECORDS.merge(files), setups)


def jhmdb_setup_group(setup: dict[str, Any]) -> Hashable | None:
    """The group a JHMDB run's ``run.json`` belongs to (its labels per joint); None for other runs."""
    return int(setup.get("labels", 1)) if setup.get("benchmark") == BENCHMARK else None


def summary_table(rep: JhmdbReport) -> TableData:
    """Every row's mean-over-joints PCK at 0.1 ... 0.5, then the published numbers beside the protocol they were
    measured with (with their sources)."""
    headers = ("method", "protocol", *(f"PCK@{alpha_label(a)}" for a in TABLE_ALPHAS), "source")
    rows = [(ROW_NAMES[row], PROTOCOL_OF[row], *_at(rep.pooled[row].mean()), "this run") for row in SCORINGS]
    if rep.labels == 1:
        rows += [(f"{a.method} (published)", a.protocol,
                  *(pct(a.pck[alpha]) if alpha in a.pck else "" for alpha in TABLE_ALPHAS), a.source)
                 for a in JHMDB_ANCHORS]
    return TableData(f"{rep.title()}: PCK (%), mean over 15 joints", headers, tuple(rows))


def joint_table(rep: JhmdbReport, protocol: str) -> TableData:
    """Per joint, the headline row of `protocol`: joint-frames scored and PCK; the mean over joints last."""
    counts = rep.pooled[HEADLINE_ROW[protocol]]
    per_joint = counts.per_joint()
    rows = [(joint, str(int(counts.scored[j])), *_at(per_joint[j])) for j, joint in enumerate(JOINTS)]
    rows.append(("mean over 15 joints", str(int(counts.scored.sum())), *_at(counts.mean())))
    return TableData(f"{rep.title()} per joint, {protocol} protocol (%)",
                     ("joint", "scored", *(f"PCK@{alpha_label(a)}" for a in TABLE_ALPHAS)), tuple(rows), protocol)


def action_table(rep: JhmdbReport, protocol: str) -> TableData:
    """Per action, the headline row of `protocol` (mean over joints of the action's pooled counts); all last."""
    row = HEADLINE_ROW[protocol]
    videos: dict[str, int] = {}
    for score in rep.scores:
        videos[score.action] = videos.get(score.action, 0) + 1
    rows = [(action, str(videos[action]), *_at(counts[row].mean())) for action, counts in rep.per_action.items()]
    rows.append(("all", str(len(rep.scores)), *_at(rep.pooled[row].mean())))
    return TableData(f"{rep.title()} per action, {protocol} protocol (%)",
                     ("action", "videos", *(f"PCK@{alpha_label(a)}" for a in TABLE_ALPHAS)), tuple(rows), protocol)
