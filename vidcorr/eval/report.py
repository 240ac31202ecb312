"""Merge results files into one report: a section per benchmark group, with published numbers beside ours.

:func:`build_report` reads any number of results files or run folders (shards, resumed runs) of any benchmark
kind (:data:`KINDS`: the pair benchmarks, TAP-Vid, JHMDB), merges each kind with its own kind (one record per
key; two different predictions for one key is an error, see ``vidcorr.runs.folder.RecordKind.merge``) and
builds its sections, each a :class:`~vidcorr.eval.tables.Section`. :func:`report_markdown`, :func:`report_json`
and the CLI's rich tables iterate over the sections alone, so they never disagree; :func:`write_report` also
draws each section's :class:`~vidcorr.eval.tables.Figure` as ``report-<slug>.png`` beside ``report.md``, which
links it. Adding a benchmark is adding a :class:`BenchmarkKind`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcorr.errors import DataError, InputError
from vidcorr.eval.jhmdb.report import JhmdbReport, jhmdb_sections, jhmdb_setup_group
from vidcorr.eval.jhmdb.results import JHMDB_RECORDS
from vidcorr.eval.pairs.report import BenchmarkReport, pair_sections, pair_setup_group
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr.eval.plot import draw_figure
from vidcorr.eval.tables import Section, TableData
from vidcorr.eval.tapvid.report import TapVidReport, tapvid_sections, tapvid_setup_group
from vidcorr.eval.tapvid.results import TAPVID_RECORDS
from vidcorr.io.atomic import write_text
from vidcorr.io.images import write_image
from vidcorr.runs.folder import RecordKind, setups_by

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


@dataclass(frozen=True)
class BenchmarkKind:
    """One kind of results a report merges.

    Attributes:
        name: ``pairs``, ``tapvid``, ``jhmdb``.
        records: how its results lines are stored (files, merging).
        setup_group: a ``run.json`` -> the section it belongs to (its folders must agree), None for other kinds.
        sections: (its results files, group -> ``run.json``) -> its sections, in display order.
        json_key: where its sections go in ``report.json``.
        json_name: a section -> its key inside a JSON object at `json_key` (always written); None for a list
            (written only when not empty).
    """

    name: str
    records: RecordKind[Any]
    setup_group: Callable[[dict[str, Any]], Hashable | None]
    sections: Callable[[list[Path], dict[Hashable, dict[str, Any]]], tuple[Section, ...]]
    json_key: str
    json_name: Callable[[Any], str] | None = None


PAIRS = BenchmarkKind("pairs", PAIR_RECORDS, pair_setup_group, pair_sections, "benchmarks",
                      json_name=lambda section: section.dataset)
TAPVID = BenchmarkKind("tapvid", TAPVID_RECORDS, tapvid_setup_group, tapvid_sections, "tapvid")
JHMDB = BenchmarkKind("jhmdb", JHMDB_RECORDS, jhmdb_setup_group, jhmdb_sections, "jhmdb")
KINDS: tuple[BenchmarkKind, ...] = (PAIRS, TAPVID, JHMDB)
KIND_BY_NAME = {kind.name: kind for kind in KINDS}
"""Every kind, in the report's order. A file is of the first kind after PAIRS whose records it holds, else a
pair results file (the first benchmarks' files carry no benchmark tag)."""


@dataclass(frozen=True)
class Report:
    """The merged results of `files`: one section per benchmark group found, pair benchmarks first (by name),
    then TAP-Vid groups, then JHMDB groups."""

    files: tuple[str, ...]
    sections: tuple[Section, ...]

    @property
    def benchmarks(self) -> tuple[BenchmarkReport, ...]:
        """The pair benchmarks' sections."""
        return tuple(s for s in self.sections if isinstance(s, BenchmarkReport))

    @property
    def tapvid(self) -> tuple[TapVidReport, ...]:
        """The TAP-Vid sections."""
        return tuple(s for s in self.sections if isinstance(s, TapVidReport))

    @property
    def jhmdb(self) -> tuple[JhmdbReport, ...]:
        """The JHMDB sections."""
        return tuple(s for s in self.sections if isinstance(s, JhmdbReport))


def collect_results_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Results files from `paths`: files as they are, folders as every kind's results files in them.

    Raises:
        InputError: no path given. DataError: a path that does not exist, or a folder without results.
    """
    found: list[Path] = []
    given = [Path(p) for p in paths]
    if not given:
        raise InputError("give at least one results file or run folder")
    for path in given:
        if path.is_dir():
            inside = sorted({f for kind in KINDS for f in kind.records.results_files(path)})
            if not inside:
                globs = ", ".join(kind.records.glob for kind in KINDS)
                raise DataError(f"{path}: no results files ({globs}) in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path}: results file or folder not found")
    return list(dict.fromkeys(found))


def kind_of(path: Path) -> BenchmarkKind:
    """The kind of a results file (see :data:`KINDS`)."""
    return next((kind for kind in KINDS[1:] if kind.records.holds(path)), PAIRS)


def build_report(paths: Iterable[str | os.PathLike]) -> Report:
    """Merge the results files or run folders `paths` and compute every section (see the module docstring).

    Raises:
        InputError: no paths. DataError: a missing or corrupt file, conflicting predictions for one key,
            folders of one section with different setups, or no results at all.
    """
    files = collect_results_files(paths)
    by_kind: dict[str, list[Path]] = {}
    for path in files:
        by_kind.setdefault(kind_of(path).name, []).append(path)
    sections: list[Section] = []
    for kind in KINDS:
        mine = by_kind.get(kind.name, [])
        if mine:
            sections += kind.sections(mine, setups_by((f.parent for f in mine), kind.setup_group))
    if not sections:
        raise DataError(f"no results in {', '.join(str(f) for f in files)}")
    return Report(tuple(str(f) for f in files), tuple(sections))


# --------------------------------------------------------------------------------------------- outputs


def figure_file(section: Section) -> str:
    """``report-<slug>.png``: the picture of `section`, beside ``report.md``."""
    return f"report-{section.slug}.png"


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", "") or "0")
    except ValueError:
        return False
    return True


def markdown_table(table: TableData) -> str:
    """``### title`` and a markdown table, numeric columns right-aligned."""
    numeric = [all(_is_number(row[i]) for row in table.rows) for i in range(len(table.headers))]
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
    lines += ["| " + " | ".join(cell or "" for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def report_markdown(report: Report) -> str:
    """The whole report as markdown: per section its coverage, setup, notes and every table, the picture
    (``report-<slug>.png``, written by :func:`write_report`) right after the first table."""
    parts = ["# vidcorr eval report", ""]
    for section in report.sections:
        parts += [f"## {section.title()}", "", section.coverage() + "."]
        line = section.setup_line()
        if line:
            parts.append(line + ".")
        parts.append("")
        for note in section.notes():
            parts += [note, ""]
        figure = section.figure()
        for index, table in enumerate(section.tables()):
            parts += [markdown_table(table), ""]
            if index == 0 and figure is not None:
                parts += [f"![{figure.title}]({figure_file(section)})", ""]
    parts += ["Results files: " + ", ".join(f"`{f}`" for f in report.files), ""]
    return "\n".join(parts)


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-able dict: ``benchmarks`` (pair benchmark -> per protocol every PCK in percent,
    alphas as keys), and, only where there are such results, ``tapvid`` (per group the mean and per-video
    metrics in percent, null for NaN, with the reference numbers) and ``jhmdb`` (per labels count every row's
    PCK, per joint and per action, with the published numbers)."""
    data: dict[str, Any] = {"version": 1, "files": list(report.files)}
    for kind in KINDS:
        if kind.json_name is not None:
            data[kind.json_key] = {}
    for section in report.sections:
        kind = KIND_BY_NAME[section.kind]
        if kind.json_name is not None:
            data[kind.json_key][kind.json_name(section)] = section.json_entry()
        else:
            data.setdefault(kind.json_key, []).append(section.json_entry())
    return data


def write_report(report: Report, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.json``, each section's ``report-<slug>.png`` and ``report.md`` (last, since it links the
    pictures) into `out_dir` (created if needed); return the paths of the JSON and the markdown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_text(out_dir / REPORT_JSON, json.dumps(report_json(report), indent=2) + "\n")
    for section in report.sections:
        figure = section.figure()
        if figure is not None:
            write_image(out_dir / figure_file(section), draw_figure(figure))
    return json_path, write_text(out_dir / REPORT_MD, report_markdown(report))
