"""The one report interface every benchmark implements, and the cells and curves it is made of.

A report (``vidcorr.eval.report``) is a list of sections, one per benchmark group found in the results: a pair
benchmark (``vidcorr.eval.pairs.report``), a TAP-Vid group (``vidcorr.eval.tapvid.report``) or a JHMDB group
(``vidcorr.eval.jhmdb.report``). Each section is a :class:`Section`: a title, a coverage line, the run's setup,
notes on the protocol, tables as text cells, a :class:`Figure` (a score against its threshold, with published
numbers as points) and its JSON entry. Markdown, the terminal and ``report.json`` are written from these alone,
so they never disagree and a new benchmark is one new section type. Nothing here needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class TableData:
    """A table as text cells, for markdown and rich alike; `protocol` is None for mixed tables."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    protocol: str | None = None


@dataclass(frozen=True)
class Series:
    """One curve: `ys[i]` (percent) at `xs[i]`; NaN values are skipped."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class Anchor:
    """A published number drawn as a point: `value` (percent) at `x`, in the colour of series `series`; with `x`
    None, a number over the whole axis (TAP-Vid's δ_avg, the mean over its thresholds): a dashed line."""

    label: str
    x: float | None
    value: float
    series: int = 0


@dataclass(frozen=True)
class Figure:
    """A score against its threshold (PCK against alpha, points within d pixels against d).

    Attributes:
        title: drawn above the plot.
        x_label, y_label: the axes' names.
        series: our curves.
        anchors: published numbers, drawn as points in their series' colour (hollow).
        x_ticks: where the x axis is labelled (also its range).
        log_x: a log2 x axis (TAP-Vid's 1, 2, 4, 8, 16 pixels).
    """

    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    anchors: tuple[Anchor, ...] = ()
    x_ticks: tuple[float, ...] = ()
    log_x: bool = False


class Section(Protocol):
    """One benchmark group of a report: what markdown, the terminal and report.json show of it."""

    kind: ClassVar[str]
    """The :class:`vidcorr.eval.report.BenchmarkKind` that builds it: ``pairs``, ``tapvid``, ``jhmdb``."""

    @property
    def slug(self) -> str:
        """A file-name-safe name, unique in a report: its picture is ``report-<slug>.png``."""
        ...

    def title(self) -> str:
        """``SPair-71k (test)``: the heading."""
        ...

    def coverage(self) -> str:
        """``12 pairs, 40 keypoints``: what was merged, and how much of the full benchmark that is."""
        ...

    def setup_line(self) -> str | None:
        """The run's model and the config fields that matter most, or None without a ``run.json``."""
        ...

    def protocols(self) -> tuple[str, ...]:
        """The protocols whose tables `tables` can limit itself to (empty: one protocol only)."""
        ...

    def notes(self) -> list[str]:
        """Paragraphs on the protocol and the published numbers, shown before the tables."""
        ...

    def tables(self, protocols: list[str] | None = None) -> list[TableData]:
        """Every table; `protocols` (default all) limits the per-protocol ones."""
        ...

    def figure(self) -> Figure | None:
        """The score against its threshold, or None where there is nothing to draw."""
        ...

    def json_entry(self) -> dict[str, Any]:
        """The section's entry in ``report.json``."""
        ...


# --------------------------------------------------------------------------------------------- cells


def pct(value: float) -> str:
    """``45.4``: a percentage with one decimal; ``nan`` for NaN."""
    return f"{value:.1f}"


def alpha_label(a: float) -> str:
    """``0.1``, ``0.05``, ``0.001``: an alpha without trailing zeros."""
    return f"{a:.2f}".rstrip("0").rstrip(".") if a >= 0.01 else f"{a:g}"


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 video``, ``3 videos``, ``2 queries``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def model_fields(setup: dict[str, Any]) -> str:
    """``model X (fp16); image_size 512, restarts 5, ...``: the model and the config fields that matter most."""
    config = setup.get("config", {})
    keys = ("image_size", "restarts", "num_steps", "crops", "seed")
    fields = ", ".join(f"{k} {config[k]}" for k in keys if k in config)
    return f"model {setup.get('model')} ({setup.get('dtype')}); {fields}"
