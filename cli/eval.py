"""`vidcorr eval spair|pfwillow|cub|tapvid|jhmdb|report`: the image-pair benchmarks (PCK), TAP-Vid point tracking
(tapnet's metrics) and JHMDB keypoint propagation (PCK), resumable and sharded, and their reports."""

from __future__ import annotations

import inspect
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from vidcorr.errors import InputError
from vidcorr.eval.pairs.pck import DEFAULT_ALPHAS
from vidcorr.io.outputs import check_out_dir
from vidcorr.runs.folder import RunOptions, RunOutcome
from vidcorr.runs.shards import Shard, device_for_rank, parse_shard, resolve_shard, shard_from_env

from .common import (
    OUTPUT,
    Device,
    ModelOptions,
    console,
    elapsed,
    err_console,
    handle_errors,
    model_options,
    warn_if_slow,
    warn_skipped_steps,
)
from .display import Display

eval_app = typer.Typer(
    help="Run the image-pair benchmarks (SPair-71k, PF-Willow, CUB-200-2011: PCK), TAP-Vid (DAVIS, Kinetics, "
    "RGB-Stacking: AJ, δ_avg, OA) and JHMDB keypoint propagation (PCK) and report them.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


class Protocol(str, Enum):
    official = "official"
    seed = "seed"


class TapVidDataset(str, Enum):
    davis = "davis"
    kinetics = "kinetics"
    rgb_stacking = "rgb_stacking"


class QueryMode(str, Enum):
    first = "first"
    strided = "strided"


DataRootOpt = Annotated[Path | None, typer.Option(
    "--data-root", envvar="VIDCORR_DATA_ROOT",
    help="The benchmark's folder, or a folder holding it (SPair-71k/, PF-WILLOW/, CUB_200_2011/).")]
CategoriesOpt = Annotated[list[str] | None, typer.Option(
    "--categories", help="Only these categories (comma-separated, or repeat the option).")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", help="Only the first N pairs (after --categories and --pairs), in the benchmark's order.")]
PairsOpt = Annotated[str | None, typer.Option("--pairs", help="Only these pair ids, comma-separated.")]
AlphaOpt = Annotated[list[float] | None, typer.Option(
    "--alpha", help="PCK alpha; repeat for several (default: 0.05 and 0.1).")]
ProtocolOpt = Annotated[Protocol, typer.Option(
    "--protocol", help="PCK shown in progress and tables: official (target box, original pixels) or seed "
    "(the seed's own scoring, bugs included, in 512x512 squashed images). Both are always computed and saved.")]
ShardOpt = Annotated[str | None, typer.Option(
    "--shard", help="Evaluate shard i of n ('i/n', from 0); under torchrun/srun each process takes its part "
    "of it.")]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Run folder: results, run.json, report (default: vidcorr-eval/BENCHMARK-SPLIT). "
    "Re-running into it resumes.", rich_help_panel=OUTPUT)]
DownloadOpt = Annotated[bool, typer.Option(
    "--download", help="Fetch the benchmark from its publisher into --data-root first (resumable).")]
VisualizeOpt = Annotated[bool, typer.Option(
    "--visualize", help="Write per-pair pictures and attention maps under OUT/vis/ with an index.json.",
    rich_help_panel=OUTPUT)]


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return items or None


def _alphas(values: list[float] | None) -> tuple[float, ...]:
    if not values:
        return DEFAULT_ALPHAS
    for value in values:
        if not 0 < value <= 1:
            raise InputError(f"--alpha must be in (0, 1], got {value:g}")
    return tuple(dict.fromkeys(float(v) for v in values))


def pck_summary(protocol: str) -> Callable[[dict[Any, float]], str]:
    """Running per-image PCK (alpha -> percent) as text: PCK@0.1, or the largest alpha where 0.1 is not scored."""

    def text(running: dict[Any, float]) -> str:
        alpha = 0.1 if 0.1 in running else max(running)
        return f"PCK@{alpha:g} {running[alpha]:.1f} ({protocol})"

    return text


def tapvid_summary(running: dict[Any, float]) -> str:
    """Running means of AJ, δ_avg and OA (fractions) as text, in percent."""
    return (f"mean so far AJ {100 * running['average_jaccard']:.1f}, "
            f"δ_avg {100 * running['average_pts_within_thresh']:.1f}, OA {100 * running['occlusion_accuracy']:.1f}")


def _download(benchmark: str, data_root: Path) -> None:
    from vidcorr.eval import download

    if download.is_present(benchmark, data_root):
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bars:
        tasks: dict[str, TaskID] = {}

        def progress(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(f"downloading {name}", total=total)
            bars.update(tasks[name], completed=done, total=total)

        download.ensure_benchmark(benchmark, data_root, progress=progress)
    console.print(f"{benchmark} is in place under {data_root}", highlight=False)


def _placement(shard: str | None) -> tuple[Shard, bool]:
    """This process's shard (``--shard`` composed with a launcher's ranks) and whether a launcher started it."""
    explicit = parse_shard(shard) if shard is not None else None
    return resolve_shard(explicit), shard_from_env() is not None


def _load(options: ModelOptions, placement: Shard, launched: bool) -> Any:
    """The model on this process's device: cuda:LOCAL_RANK under a launcher (made the current CUDA device,
    so that plain 'cuda' means it everywhere)."""
    chosen = device_for_rank(options.device.value, placement.local_rank, launched=launched)
    if chosen.startswith("cuda:"):
        import torch

        torch.cuda.set_device(int(chosen.split(":", 1)[1]))
        return options.load(Device.cuda)
    return options.load()


def _shard_label(label: str, placement: Shard) -> str:
    return label + (f" shard {placement.index}/{placement.count}" if placement.count > 1 else "")


def _finish(run: Callable[[Display], RunOutcome], display: Display, *, out: Path, placement: Shard,
            results_path: Path, protocol: str, notes: Sequence[str] = ()) -> None:
    """Run the loop under `display`, then say what it did and, for a whole run, print and write the report."""
    start = time.perf_counter()
    with display:
        try:
            outcome = run(display)
        except KeyboardInterrupt:
            raise display.interrupted(str(results_path)) from None
    console.print(f"{outcome.evaluated} {display.unit} evaluated in {elapsed(start)}, {outcome.resumed} resumed; "
                  f"results in {outcome.results_path}", highlight=False, soft_wrap=True)
    for note in notes:
        console.print(note, highlight=False)
    if placement.count > 1:
        console.print(f"shard {placement.index}/{placement.count} done; once every shard is, merge them with: "
                      f"vidcorr eval report {out}", highlight=False, soft_wrap=True)
        return
    _report([out], out, protocol)


def _report(results: Sequence[Path], folder: Path, protocol: str) -> None:
    from vidcorr.eval.report import build_report, write_report

    built = build_report(results)
    print_report(built, protocol)
    json_path, md_path = write_report(built, folder)
    pictures = sorted(folder.glob("report-*.png"))
    console.print(f"wrote {json_path} and {md_path}" + (f" (pictures: {', '.join(p.name for p in pictures)})"
                                                        if pictures else ""), highlight=False, soft_wrap=True)


def render_table(table: Any) -> Table:
    """A rich Table from a ``vidcorr.eval.report.TableData``."""
    rich_table = Table(title=table.title, title_justify="left")
    for i, header in enumerate(table.headers):
        numeric = all(row[i] == "" or row[i].replace(".", "", 1).replace(",", "").isdigit() for row in table.rows)
        rich_table.add_column(header, justify="right" if numeric else "left")
    for row in table.rows:
        rich_table.add_row(*row)
    return rich_table


def print_report(report: Any, protocol: str) -> None:
    """Every section of a ``vidcorr.eval.report.Report``: its coverage, setup, notes and tables, the per-protocol
    tables under `protocol` where the section has it (else under its first)."""
    for section in report.sections:
        console.print(f"[bold]{section.title()}[/]: {section.coverage()}", highlight=False)
        line = section.setup_line()
        if line:
            console.print(line, highlight=False, soft_wrap=True)
        for note in section.notes():
            console.print(note, highlight=False, soft_wrap=True)
        available = section.protocols()
        shown = [protocol] if protocol in available else list(available[:1])
        for table in section.tables(shown or None):
            console.print(render_table(table))


@dataclass(frozen=True)
class PairRunOptions:
    """The options of the three pair benchmarks' commands (spair, pfwillow, cub)."""

    data_root: Path | None
    split: str
    categories: list[str] | None
    limit: int | None
    pairs: str | None
    alpha: list[float] | None
    protocol: Protocol
    shard: str | None
    out: Path | None
    download: bool
    visualize: bool


def _evaluate_pairs(benchmark: str, run: PairRunOptions, options: ModelOptions,
                    reader_options: dict[str, Any]) -> None:
    """Check everything, load the model, run the pair loop (``vidcorr.eval.runner.run_eval``), report."""
    from vidcorr.eval.pairs import runner
    from vidcorr.eval.pairs.readers import read_benchmark
    from vidcorr.eval.pairs.results import PAIR_RECORDS

    if run.data_root is None:
        raise InputError("give the benchmark folder with --data-root DIR (or set VIDCORR_DATA_ROOT); add "
                         "--download to fetch it there")
    alphas = _alphas(run.alpha)
    placement, launched = _placement(run.shard)
    cfg = options.config()
    out = check_out_dir(run.out or Path("vidcorr-eval") / f"{benchmark}-{run.split}")
    if run.download:
        _download(benchmark, run.data_root)
    pair_list = read_benchmark(benchmark, run.data_root, split=run.split, categories=_split_list(run.categories),
                               limit=run.limit, pair_ids=_split_list([run.pairs] if run.pairs else None),
                               **reader_options)
    if not pair_list:
        raise InputError(f"no {benchmark} pairs to evaluate: the filters (--categories, --pairs, --limit) left none")
    shard = (placement.index, placement.count)
    todo = runner.pending_pairs(pair_list, out, shard)

    ldm = _load(options, placement, launched)
    if todo:
        warn_if_slow(ldm, cfg, sum(p.num_keypoints for p in todo), 1)
    setup = runner.run_setup(benchmark, run.split, ldm, cfg, alphas=alphas, **reader_options)
    display = Display(_shard_label(f"{benchmark} {run.split}", placement), "pairs",
                      summary=pck_summary(run.protocol.value))

    def loop(display: Display) -> RunOutcome:
        def predict(pair: Any, src: Any, trg: Any) -> Any:
            return runner.predict_pair(ldm, pair, src, trg, cfg, return_maps=run.visualize, progress=display)

        outcome = runner.run_eval(pair_list, out, predict, alphas=alphas, protocol=run.protocol.value,
                                  visualize=run.visualize,
                                  options=RunOptions(shard=shard, setup=setup, progress=display.items))
        warn_skipped_steps(sum(sum(s.extra.get("skipped_steps", [])) for s in outcome.records),
                           sum(s.num_keypoints for s in outcome.records) * cfg.restarts * cfg.num_steps)
        return outcome

    _finish(loop, display, out=out, placement=placement, results_path=PAIR_RECORDS.results_path(out, shard),
            protocol=run.protocol.value, notes=[f"pictures and index: {out / 'vis'}"] if run.visualize else [])


def _pair_options(
    data_root: DataRootOpt = None,
    split: str = "test",
    categories: CategoriesOpt = None,
    limit: LimitOpt = None,
    pairs: PairsOpt = None,
    alpha: AlphaOpt = None,
    protocol: ProtocolOpt = Protocol.official,
    shard: ShardOpt = None,
    out: OutOpt = None,
    download: DownloadOpt = False,
    visualize: VisualizeOpt = False,
) -> None:
    """The options every pair benchmark's command takes (their signature; never called)."""


@dataclass(frozen=True)
class PairBenchmark:
    """What one pair benchmark's command adds to :func:`_pair_options`.

    Attributes:
        name: the command and the reader's name.
        doc: the command's help (first line: the benchmark and the paper's numbers).
        split_help: --split's help.
        extra: options of this benchmark only (inspect.Parameters with Annotated typer options).
        reader_options: the extra options' values -> the reader's keyword arguments (checks them too).
    """

    name: str
    doc: str
    split_help: str
    extra: tuple[inspect.Parameter, ...] = ()
    reader_options: Callable[[dict[str, Any]], dict[str, Any]] = lambda values: {}


def _cub_reader_options(values: dict[str, Any]) -> dict[str, Any]:
    if values["num_classes"] < 0:
        raise InputError(f"--num-classes must be >= 0 (0 for all), got {values['num_classes']}")
    return {"num_classes": values["num_classes"] or None}


PAIR_BENCHMARKS: tuple[PairBenchmark, ...] = (
    PairBenchmark("spair", """SPair-71k: 12,234 test pairs in 18 categories (paper: 28.9 / 45.4 at PCK@0.05 / 0.10).

    PCK per image and per keypoint, pooled, per category and by viewpoint, scale, truncation and occlusion.
    """, "trn, val or test."),
    PairBenchmark("pfwillow", "PF-Willow: 900 pairs, 10 keypoints each (paper: 53.0 / 84.3 at PCK@0.05 / 0.10).",
                  "PF-Willow has only test."),
    PairBenchmark("cub", """CUB-200-2011: every two test images of a class (paper: 61.6 / 77.5 at PCK@0.05 / 0.10).

    The seed's pairing: the test images of classes 1..3 unless --num-classes says otherwise.
    """, "train or test.", (inspect.Parameter(
        "num_classes", inspect.Parameter.KEYWORD_ONLY, default=3, annotation=Annotated[int, typer.Option(
            "--num-classes", help="Pair the images of classes 1..N (the seed's 3); 0 for all 200.")]),),
        _cub_reader_options),
)
"""The three pair benchmarks' commands, declared by :func:`add_pair_command`."""


def add_pair_command(app: typer.Typer, spec: PairBenchmark) -> None:
    """Declare `spec`'s command on `app`: :func:`_pair_options` (with its own --split help) plus `spec.extra`
    and the model options, evaluated by :func:`_evaluate_pairs`."""
    common = []
    for parameter in inspect.signature(_pair_options).parameters.values():
        annotation = typing.get_type_hints(_pair_options, include_extras=True)[parameter.name]
        if parameter.name == "split":
            annotation = Annotated[str, typer.Option("--split", help=spec.split_help)]
        common.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    parameters = [*common, *spec.extra]
    extra_names = [p.name for p in spec.extra]

    def command(*, options: ModelOptions, **values: Any) -> None:
        reader_options = spec.reader_options({name: values.pop(name) for name in extra_names})
        _evaluate_pairs(spec.name, PairRunOptions(**values), options, reader_options)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__name__ = command.__qualname__ = spec.name
    command.__doc__ = spec.doc
    app.command(spec.name)(handle_errors(model_options(init_prompt=False)(command)))


for _spec in PAIR_BENCHMARKS:
    add_pair_command(eval_app, _spec)


@eval_app.command("tapvid")
@handle_errors
@model_options(init_prompt=False)
def tapvid(
    dataset: Annotated[TapVidDataset, typer.Option(
        "--dataset",
        help="davis (30 videos), kinetics (shards of JPEG videos) or rgb_stacking (50 synthetic videos).")],
    data_root: Annotated[Path | None, typer.Option(
        "--data-root", envvar="VIDCORR_DATA_ROOT",
        help="tapvid_davis.pkl, tapvid_rgb_stacking.pkl, Kinetics' folder of *_of_*.pkl shards (or one shard), or a "
        "folder holding them as tapnet's zips unpack (tapvid_davis/tapvid_davis.pkl, ...).")] = None,
    query_mode: Annotated[QueryMode, typer.Option(
        "--query-mode", help="first: one query per track at its first visible frame, scored on later frames "
        "(query_first); strided: a query every 5 frames from each track visible there, scored on every other "
        "frame.")] = QueryMode.first,
    full_res: Annotated[bool, typer.Option(
        "--full-res", help="Track the frames as stored instead of tapnet's 256x256 frames; predictions are mapped to "
        "256x256 for scoring (reported as such).")] = False,
    videos: Annotated[list[str] | None, typer.Option(
        "--videos", help="Only these videos: names or shell patterns, comma-separated or repeated.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="Only the first N videos (after --videos), in the dataset's order.")] = None,
    visibility_threshold: Annotated[float | None, typer.Option(
        "--visibility-threshold", min=0.0, max=1.0,
        help="A point is predicted visible where its confidence is at least this (default: the tracker's).")] = None,
    labels: Annotated[int, typer.Option(
        "--labels", min=1, help="K labels per query from the ground truth: the query plus K-1 visible frames of its "
        "track evenly spaced over its visible span, fitted jointly; no label frame is scored. 1 is tapnet's "
        "protocol; K > 1 is reported apart.")] = 1,
    shard: ShardOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run folder: results, predictions, run.json, report (default: "
        "vidcorr-eval/tapvid-DATASET-MODE[-KLABELS]). Re-running into it resumes.", rich_help_panel=OUTPUT)] = None,
    *,
    options: ModelOptions,
) -> None:
    """TAP-Vid point tracking with tapnet's metrics: AJ, δ_avg and OA per video, then the mean over videos.

    Queries are built as tapnet builds them; each is fitted on its own frame (with --labels K, jointly on its K
    labels) and tracked through the video; predicted occlusion is "not visible". Other trackers' published numbers
    are shown for scale.
    """
    from vidcorr.eval.tapvid import runner as tapvid_runner
    from vidcorr.eval.tapvid.results import TAPVID_RECORDS

    if data_root is None:
        raise InputError("give the TAP-Vid data with --data-root PATH (the pickle, the Kinetics shard folder, or a "
                         "folder holding them; or set VIDCORR_DATA_ROOT)")
    placement, launched = _placement(shard)
    cfg = options.config()
    threshold = {} if visibility_threshold is None else {"visibility_threshold": visibility_threshold}
    mode = query_mode.value
    label_tag = f"-labels{labels}" if labels != 1 else ""
    out = check_out_dir(out or Path("vidcorr-eval") / f"tapvid-{dataset.value}-{mode}{'-fullres' if full_res else ''}"
                        f"{label_tag}")
    source = tapvid_runner.TapVidSource(dataset.value, tapvid_runner.resolve_tapvid_path(dataset.value, data_root),
                                        full_res, tuple(_split_list(videos) or ()), limit)
    names = source.names()
    if not names:
        raise InputError(f"no {dataset.value} videos to evaluate: the filters (--videos, --limit) left none")
    shard_videos = (placement.index, placement.count)
    todo = tapvid_runner.pending_videos(names, out, (dataset.value, mode, full_res), shard_videos, labels)

    ldm = _load(options, placement, launched)
    if todo and ldm.device.type == "cpu" and ldm.is_full_size:
        err_console.print("[bold yellow]warning:[/] a full-size model on a CPU tracks one TAP-Vid video in hours; "
                          "use a GPU, or --preset fast and --limit for a smoke run", soft_wrap=True)
    setup = tapvid_runner.tapvid_setup(source, mode, ldm, cfg, **threshold, labels=labels)
    display = Display(_shard_label(f"tapvid {dataset.value} {mode}{label_tag}", placement), "videos",
                      summary=tapvid_summary,
                         plain_every_s=0.0)

    def loop(display: Display) -> RunOutcome:
        def predict(video: Any, queries: Any) -> Any:
            return tapvid_runner.predict_video(ldm, video, queries, cfg, progress=display, **threshold)

        return tapvid_runner.run_tapvid(source, out, predict, query_mode=mode, names=names, labels=labels,
                                        options=RunOptions(shard=shard_videos, setup=setup, progress=display.items))

    _finish(loop, display, out=out, placement=placement,
            results_path=TAPVID_RECORDS.results_path(out, shard_videos), protocol=Protocol.official.value)


class JhmdbProtocol(str, Enum):
    crw = "crw"
    tapnet = "tapnet"


def jhmdb_summary(protocol: str) -> Callable[[dict[Any, float]], str]:
    """Running PCK@0.1 and @0.2 (mean over joints, `protocol`'s headline row) as text."""

    def text(running: dict[Any, float]) -> str:
        return f"PCK@0.1 {running[f'{protocol}@0.1']:.1f}, @0.2 {running[f'{protocol}@0.2']:.1f} ({protocol})"

    return text


@eval_app.command("jhmdb")
@handle_errors
@model_options(init_prompt=False)
def jhmdb(
    data_root: Annotated[Path | None, typer.Option(
        "--data-root", envvar="VIDCORR_DATA_ROOT",
        help="The folder holding JHMDB's Rename_Images/, joint_positions/ and splits/ (or its JHMDB/ folder, "
        "where --download puts them).")] = None,
    videos: Annotated[list[str] | None, typer.Option(
        "--videos", help="Only these videos: names (ACTION/VIDEO or VIDEO) or shell patterns, comma-separated or "
        "repeated.")] = None,
    actions: Annotated[list[str] | None, typer.Option(
        "--actions", help="Only these actions (clap, golf, ...), comma-separated or repeated.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="Only the first N videos (after --actions and --videos), in the benchmark's order.")] = None,
    labels: Annotated[int, typer.Option(
        "--labels", help="Labels per joint: frame 1's ground truth and K-1 evenly spaced later frames (excluded "
        "from scoring), fitted jointly; rows kept apart from the standard protocol's (K=1).")] = 1,
    protocol: Annotated[JhmdbProtocol, typer.Option(
        "--protocol", help="PCK shown in progress and tables: crw (CRW's eval_pck.py, which the published numbers "
        "use) or tapnet (TAP-Net's and TAPIR's). Both are always computed and saved.")] = JhmdbProtocol.crw,
    visibility_threshold: Annotated[float | None, typer.Option(
        "--visibility-threshold", min=0.0, max=1.0,
        help="A joint is predicted visible where its confidence is at least this (default: the tracker's); "
        "used by the labelled row only.")] = None,
    shard: ShardOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run folder: results, predictions, run.json, report (default: vidcorr-eval/jhmdb, or "
        "vidcorr-eval/jhmdb-labelsK). Re-running into it resumes.", rich_help_panel=OUTPUT)] = None,
    download: Annotated[bool, typer.Option(
        "--download", help="Fetch the publisher's three archives into --data-root/JHMDB first, each checked "
        "against its published MD5 (resumable).")] = False,
    visualize: Annotated[bool, typer.Option(
        "--visualize", help="Write per-video key frames, joints against the ground truth and attention maps "
        "under OUT/vis/ACTION_VIDEO/ for `vidcorr view`.", rich_help_panel=OUTPUT)] = False,
    *,
    options: ModelOptions,
) -> None:
    """JHMDB keypoint propagation: split 1's 268 test videos, PCK at 0.1 / 0.2 (and 0.3 to 0.5).

    The 15 joints of frame 1 are fitted (one embedding each) and tracked forward; scored under CRW's protocol
    (which the published frozen-feature numbers use) and tapnet's, with the published numbers for scale.
    """
    from vidcorr.eval.jhmdb import runner as jhmdb_runner
    from vidcorr.eval.jhmdb.data import JhmdbSource, resolve_root
    from vidcorr.eval.jhmdb.results import JHMDB_RECORDS

    if data_root is None:
        raise InputError("give the JHMDB folder with --data-root DIR (or set VIDCORR_DATA_ROOT); add --download to "
                         "fetch it there")
    jhmdb_runner.check_labels(labels)
    placement, launched = _placement(shard)
    cfg = options.config()
    threshold = {} if visibility_threshold is None else {"visibility_threshold": visibility_threshold}
    out = check_out_dir(out or Path("vidcorr-eval") / ("jhmdb" if labels == 1 else f"jhmdb-labels{labels}"))
    if download:
        _download("jhmdb", data_root)
    source = JhmdbSource(resolve_root(data_root), tuple(_split_list(videos) or ()),
                         tuple(_split_list(actions) or ()), limit)
    names = source.names()
    if not names:
        raise InputError("no JHMDB videos to evaluate: the filters (--actions, --videos, --limit) left none")
    shard_videos = (placement.index, placement.count)
    todo = jhmdb_runner.pending_videos(names, out, labels, shard_videos)

    ldm = _load(options, placement, launched)
    if todo and ldm.device.type == "cpu" and ldm.is_full_size:
        err_console.print("[bold yellow]warning:[/] a full-size model on a CPU fits and tracks one JHMDB video in "
                          "hours; use a GPU, or --preset fast and --limit for a smoke run", soft_wrap=True)
    setup = jhmdb_runner.jhmdb_setup(labels, ldm, cfg, **threshold)
    display = Display(_shard_label("jhmdb split 1", placement), "videos", summary=jhmdb_summary(protocol.value),
                         plain_every_s=0.0)

    def loop(display: Display) -> RunOutcome:
        def predict(video: Any, frames: tuple[int, ...]) -> Any:
            vis_dir = jhmdb_runner.vis_folder(out, video.name) if visualize else None
            return jhmdb_runner.predict_video(ldm, video, frames, cfg, progress=display, vis_dir=vis_dir,
                                              **threshold)

        return jhmdb_runner.run_jhmdb(source, out, predict, labels=labels, names=names,
                                      options=RunOptions(shard=shard_videos, setup=setup, progress=display.items))

    notes = [f"pictures per video under {out / 'vis'}: open one with vidcorr view {out / 'vis'}/ACTION_VIDEO"] \
        if visualize else []
    _finish(loop, display, out=out, placement=placement, results_path=JHMDB_RECORDS.results_path(out, shard_videos),
            protocol=protocol.value, notes=notes)


class ReportProtocol(str, Enum):
    official = "official"
    seed = "seed"
    crw = "crw"
    tapnet = "tapnet"


@eval_app.command("report")
@handle_errors
def report(
    results: Annotated[list[Path], typer.Argument(help="Results files or run folders; shards are merged.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Where to write report.json, report.md and its pictures (default: the first results' "
        "folder).")] = None,
    protocol: Annotated[ReportProtocol, typer.Option(
        "--protocol", help="Per-protocol tables shown: official or seed (pair benchmarks), crw or tapnet (JHMDB); "
        "a benchmark without it shows its first. report.md has them all.")] = ReportProtocol.official,
) -> None:
    """Merge results files or run folders and print every benchmark's tables beside published numbers.

    Shards are deduplicated by pair id or video (two different predictions for one is an error); writes
    report.json, report.md and one picture per benchmark (its score against its threshold, published numbers as
    points). TAP-Vid: the mean over videos beside other trackers' published numbers, and a per-video table.
    JHMDB: PCK per protocol, per joint and per action beside frozen-feature methods' published numbers.
    """
    folder = out or (results[0] if results[0].is_dir() else results[0].parent)
    _report(results, check_out_dir(folder), protocol.value)
