"""The pair benchmarks' report section: PCK tables per protocol beside the paper's published numbers.

:func:`pair_sections` merges pair results (one line per pair id) and computes, per benchmark found and per
protocol (both are always scored), the per-image and per-keypoint PCK at every alpha: pooled, per category,
the unweighted mean over categories, and per level of each SPair difficulty flag. A :class:`BenchmarkReport`
is one benchmark's :class:`~vidcorr.eval.tables.Section`.

The "paper" column holds Hedlin et al. 2023's published PCK (SD 1.4, the seed's protocol) at 0.05 and 0.10,
beside our seed-protocol per-image PCK, the number the seed's evaluation prints as PCK.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs.pck import PairScore, PCKProtocol, PCKSummary, PCKValues, pck_curve, summarize
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr.eval.tables import Anchor, Figure, Series, TableData, alpha_label, model_fields, pct

PAPER_PCK: dict[str, dict[float, float]] = {
    "spair": {0.05: 28.9, 0.1: 45.4},
    "pfwillow": {0.05: 53.0, 0.1: 84.3},
    "cub": {0.05: 61.6, 0.1: 77.5},
}
"""Hedlin et al. 2023 (NeurIPS), SD 1.4, the seed's PCK protocol: benchmark -> alpha -> percent."""
PAPER_SOURCE = "Hedlin et al. 2023, SD 1.4, seed protocol, per image"

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

BENCHMARK_NAMES = {"spair": "SPair-71k", "pfwillow": "PF-Willow", "cub": "CUB-200-2011"}
FULL_SPLIT_PAIRS = {("spair", "test"): 12234, ("pfwillow", "test"): 900}
"""Pairs in the full split, to say how much of it a report covers."""

CURVE_ALPHAS: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 21))
"""Where the picture samples PCK: 0.01 to 0.20, the range pair benchmarks are read at."""

_PROTOCOLS = tuple(p.value for p in PCKProtocol)
_MEASURES = (("per image", "per_image"), ("per keypoint", "per_keypoint"))


def protocol_note(dataset: str) -> str:
    """The protocols of `dataset`'s tables, and where the paper's numbers belong, in one paragraph."""
    official = ("official = the TARGET box's longer side" if dataset != "pfwillow"
                else "official = the valid TARGET keypoints' extent") + ", original target pixels"
    seed = SEED_PROTOCOL_NOTES.get(dataset, "seed = the seed's own scoring.")
    return (f"Protocols: {official}; {seed} Paper: Hedlin et al. 2023, SD 1.4, seed protocol; shown beside "
            "seed / per image only.")


def _value_headers(alphas: tuple[float, ...]) -> tuple[str, ...]:
    return tuple(f"{label} @{alpha_label(a)}" for label, _ in _MEASURES for a in alphas)


def _values(values: PCKValues) -> tuple[str, ...]:
    return tuple(pct(v) for _, attr in _MEASURES for v in getattr(values, attr))


@dataclass(frozen=True)
class BenchmarkReport:
    """One pair benchmark's tables (a report :class:`~vidcorr.eval.tables.Section`).

    Attributes:
        dataset: ``spair``, ``pfwillow`` or ``cub``.
        num_pairs, num_keypoints: merged pairs and their keypoints.
        alphas: the alphas of every tuple in `summaries`.
        summaries: protocol name -> its PCK tables.
        paper: alpha -> the published PCK (seed protocol), for the alphas that have one.
        setup: the run's ``run.json`` (model, config, split, ...), or None where no run folder had one.
        curves: protocol name -> per-image PCK at :data:`CURVE_ALPHAS`, for the picture.
    """

    kind: ClassVar[str] = "pairs"
    dataset: str
    num_pairs: int
    num_keypoints: int
    alphas: tuple[float, ...]
    summaries: dict[str, PCKSummary]
    paper: dict[float, float]
    setup: dict[str, Any] | None
    curves: dict[str, tuple[float, ...]]

    @property
    def slug(self) -> str:
        return self.dataset

    def title(self) -> str:
        """``SPair-71k (test)``: the benchmark and, where known, its split."""
        name = BENCHMARK_NAMES.get(self.dataset, self.dataset)
        split = (self.setup or {}).get("split")
        return f"{name} ({split})" if split else name

    def coverage(self) -> str:
        """``12 pairs, 40 keypoints`` and, for a partial known split, how much of it that is."""
        text = f"{self.num_pairs:,} pairs, {self.num_keypoints:,} keypoints"
        full = FULL_SPLIT_PAIRS.get((self.dataset, str((self.setup or {}).get("split"))))
        if full is not None and self.num_pairs < full:
            text += f" (of {full:,} in the full split: incomplete)"
        return text

    def setup_line(self) -> str | None:
        return model_fields(self.setup) if self.setup else None

    def protocols(self) -> tuple[str, ...]:
        return tuple(self.summaries)

    def notes(self) -> list[str]:
        return [protocol_note(self.dataset)]

    def tables(self, protocols: list[str] | None = None) -> list[TableData]:
        """The summary table, then per protocol (all by default) the per-category and per-flag tables."""
        tables = [summary_table(self)]
        for protocol in protocols or self.summaries:
            if protocol not in self.summaries:
                raise InputError(f"these results have no {protocol!r} PCK (they have {', '.join(self.summaries)})")
            tables.append(category_table(self, protocol))
            flags = flag_table(self, protocol)
            if flags is not None:
                tables.append(flags)
        return tables

    def figure(self) -> Figure:
        """Per-image PCK against alpha per protocol, the paper's numbers as points on the seed curve."""
        names = list(self.curves)
        series = tuple(Series(f"vidcorr, {name} protocol, per image", CURVE_ALPHAS, self.curves[name])
                       for name in names)
        seed = names.index(PCKProtocol.SEED.value) if PCKProtocol.SEED.value in names else 0
        anchors = tuple(Anchor("paper (Hedlin et al. 2023, seed protocol)", a, v, seed)
                        for a, v in sorted(PAPER_PCK.get(self.dataset, {}).items()))
        return Figure(f"{self.title()}: PCK against alpha", "alpha", "PCK (%)", series, anchors,
                      x_ticks=(0.05, 0.1, 0.15, 0.2))

    def json_entry(self) -> dict[str, Any]:
        return {
            "name": BENCHMARK_NAMES.get(self.dataset, self.dataset),
            "num_pairs": self.num_pairs,
            "num_keypoints": self.num_keypoints,
            "alphas": list(self.alphas),
            "paper": {"source": PAPER_SOURCE, "pck": {repr(a): v for a, v in self.paper.items()}},
            "setup": self.setup,
            "protocols": {name: _summary_json(s) for name, s in self.summaries.items()},
        }


def summarize_benchmark(dataset: str, scores: list[PairScore], setup: dict[str, Any] | None = None
                        ) -> BenchmarkReport:
    """The tables of one benchmark's scores under every protocol they were scored with."""
    protocols = [p for p in _PROTOCOLS if all(p in s.correct for s in scores)]
    if not protocols:
        raise DataError(f"{dataset} results share no PCK protocol")
    summaries = {p: summarize(scores, p) for p in protocols}
    alphas = summaries[protocols[0]].alphas
    paper = {a: v for a, v in PAPER_PCK.get(dataset, {}).items() if any(abs(a - b) < 1e-12 for b in alphas)}
    curves = {p: pck_curve(scores, p, CURVE_ALPHAS) for p in protocols}
    return BenchmarkReport(dataset, len(scores), sum(s.num_keypoints for s in scores), tuple(alphas), summaries,
                           paper, setup, curves)


def pair_sections(files: list[Path], setups: dict[Hashable, dict[str, Any]]) -> tuple[BenchmarkReport, ...]:
    """The merged pair results of `files`, one section per benchmark sorted by name; `setups`: benchmark ->
    its ``run.json``."""
    by_dataset: dict[str, list[PairScore]] = {}
    for score in PAIR_RECORDS.merge(files):
        by_dataset.setdefault(score.dataset, []).append(score)
    return tuple(summarize_benchmark(name, group, setups.get(name)) for name, group in sorted(by_dataset.items()))


def summary_table(bench: BenchmarkReport) -> TableData:
    """Pooled PCK per protocol and measure, with the paper's numbers beside the seed's per-image PCK."""
    alphas = bench.alphas
    headers = ("protocol", "measure", *(f"PCK@{alpha_label(a)}" for a in alphas),
               *(f"paper @{alpha_label(a)}" for a in alphas))
    rows = []
    for protocol, summary in bench.summaries.items():
        for label, attr in _MEASURES:
            paper = [""] * len(alphas)
            if protocol == PCKProtocol.SEED.value and attr == "per_image":
                paper = [pct(bench.paper[a]) if a in bench.paper else "" for a in alphas]
            rows.append((protocol, label, *(pct(v) for v in getattr(summary.overall, attr)), *paper))
        rows.append((protocol, "mean over categories", *(pct(v) for v in summary.category_mean),
                     *([""] * len(alphas))))
    return TableData(f"{bench.title()}: PCK (%)", headers, tuple(rows))


def category_table(bench: BenchmarkReport, protocol: str) -> TableData:
    """Per-category PCK under `protocol`, per image and per keypoint, with a pooled last row."""
    summary = bench.summaries[protocol]
    rows = [(name, str(v.num_pairs), str(v.num_keypoints), *_values(v)) for name, v in summary.per_category.items()]
    overall = summary.overall
    rows.append(("all", str(overall.num_pairs), str(overall.num_keypoints), *_values(overall)))
    return TableData(f"{bench.title()} per category, {protocol} protocol",
                     ("category", "pairs", "keypoints", *_value_headers(bench.alphas)), tuple(rows), protocol)


def flag_table(bench: BenchmarkReport, protocol: str) -> TableData | None:
    """PCK per level of each difficulty flag (SPair) under `protocol`; None where pairs carry no flags."""
    summary = bench.summaries[protocol]
    if not summary.per_flag:
        return None
    rows = [(name.replace("_", " "), str(level), str(v.num_pairs), str(v.num_keypoints), *_values(v))
            for name, levels in summary.per_flag.items() for level, v in levels.items()]
    return TableData(f"{bench.title()} by difficulty, {protocol} protocol",
                     ("flag", "level", "pairs", "keypoints", *_value_headers(bench.alphas)), tuple(rows), protocol)


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


def pair_setup_group(setup: dict[str, Any]) -> Hashable | None:
    """The benchmark a pair run's ``run.json`` belongs to (its folders must agree on their setup)."""
    return str(setup.get("benchmark"))

