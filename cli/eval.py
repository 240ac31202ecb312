"""`vidcorr eval spair|pfwillow|cub|tapvid|report`: the image-pair benchmarks (PCK) and TAP-Vid point tracking
(tapnet's metrics), resumable and sharded, and their reports."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from vidcorr.errors import InputError, VidcorrError
from vidcorr.eval.pck import DEFAULT_ALPHAS

from .common import (
    Autocast,
    AutocastOpt,
    CompileOpt,
    CropsOpt,
    Device,
    DeviceOpt,
    DType,
    DTypeOpt,
    ImageSizeOpt,
    MaxBatchOpt,
    ModelOpt,
    PresetOpt,
    RestartsOpt,
    SeedOpt,
    StepsOpt,
    build_config,
    check_out_dir,
    console,
    elapsed,
    err_console,
    format_seconds,
    handle_errors,
    load_model,
    warn_if_slow,
    warn_skipped_steps,
)

eval_app = typer.Typer(
    help="Run the image-pair benchmarks (SPair-71k, PF-Willow, CUB-200-2011: PCK) and TAP-Vid (DAVIS, Kinetics, "
    "RGB-Stacking: AJ, δ_avg, OA) and report them.",
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


class Interrupted(VidcorrError):
    """Ctrl-C during a run: the finished pairs are saved and a re-run resumes."""

    exit_code = 130


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
    "Re-running into it resumes.")]
DownloadOpt = Annotated[bool, typer.Option(
    "--download", help="Fetch the benchmark from its publisher into --data-root first (resumable).")]
VisualizeOpt = Annotated[bool, typer.Option(
    "--visualize", help="Write per-pair pictures and attention maps under OUT/vis/ with an index.json.")]


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


class EvalDisplay:
    """Pairs done/total with ETA and the running PCK@0.10, plus the current pair's fit/locate steps.

    On a terminal: rich bars. Elsewhere (SLURM logs): a plain line at most every `plain_every_s` seconds
    and at the end.
    """

    def __init__(self, label: str, plain_every_s: float = 30.0) -> None:
        self.label = label
        self.enabled = console.is_terminal
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[pck]}"), console=console, disable=not self.enabled)
        self.pairs_task: TaskID | None = None
        self.stage_task: TaskID | None = None
        self.last: Any = None
        self.printed: Any = None
        self.plain_every_s = plain_every_s
        self.last_plain = 0.0
        self.start = time.perf_counter()

    def __enter__(self) -> EvalDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
        if not self.enabled and self.last is not None and self.last is not self.printed and exc[0] is None:
            self._plain(self.last)

    @staticmethod
    def pck_text(update: Any) -> str:
        if not update.running_pck:
            return ""
        alpha = 0.1 if 0.1 in update.running_pck else max(update.running_pck)
        return f"PCK@{alpha:g} {update.running_pck[alpha]:.1f} ({update.protocol})"

    def __call__(self, update: Any) -> None:
        self.last = update
        if not self.enabled:
            if update.pair_id is not None and time.perf_counter() - self.last_plain >= self.plain_every_s:
                self._plain(update)
            return
        if self.pairs_task is None:
            self.pairs_task = self.progress.add_task(self.label, total=update.total, completed=update.done,
                                                     pck=self.pck_text(update))
        self.progress.update(self.pairs_task, completed=update.done, pck=self.pck_text(update))

    def stage(self, stage: str, done: int, total: int) -> None:
        """The library's progress(stage, done, total) inside one pair."""
        if not self.enabled:
            return
        label = {"fit": "  fit steps", "locate": "  locate crops"}.get(stage, f"  {stage}")
        if self.stage_task is None:
            self.stage_task = self.progress.add_task(label, total=total, pck="")
        self.progress.update(self.stage_task, description=label, completed=done, total=total)

    def _plain(self, update: Any) -> None:
        self.printed = update
        self.last_plain = time.perf_counter()
        rate = (update.done - update.resumed) / max(self.last_plain - self.start, 1e-9)
        eta = f", ETA {format_seconds((update.total - update.done) / rate)}" if rate > 0 else ""
        pck = self.pck_text(update)
        console.print(f"{self.label}: {update.done}/{update.total} pairs{eta}" + (f", {pck}" if pck else ""),
                      highlight=False, soft_wrap=True)


class TapVidDisplay(EvalDisplay):
    """Videos done/total with ETA and the running mean AJ / δ_avg / OA, plus the current video's fit and track
    steps; off a terminal one plain line per video (videos take minutes each)."""

    def __init__(self, label: str) -> None:
        super().__init__(label, plain_every_s=0.0)

    @staticmethod
    def pck_text(update: Any) -> str:
        if not update.running:
            return ""
        running = update.running
        return (f"AJ {100 * running['average_jaccard']:.1f}, δ_avg {100 * running['average_pts_within_thresh']:.1f}, "
                f"OA {100 * running['occlusion_accuracy']:.1f}")

    def __call__(self, update: Any) -> None:
        self.last = update
        if not self.enabled:
            if update.video is not None:
                self._plain(update)
            return
        if self.pairs_task is None:
            self.pairs_task = self.progress.add_task(self.label, total=update.total, completed=update.done,
                                                     pck=self.pck_text(update))
        self.progress.update(self.pairs_task, completed=update.done, pck=self.pck_text(update))

    def _plain(self, update: Any) -> None:
        self.printed = update
        self.last_plain = time.perf_counter()
        rate = (update.done - update.resumed) / max(self.last_plain - self.start, 1e-9)
        eta = f", ETA {format_seconds((update.total - update.done) / rate)}" if rate > 0 else ""
        if update.video is None:
            latest = f", {update.resumed} resumed"
        else:
            latest = f", {update.video} done in {format_seconds(update.seconds)}{eta}"
        scores = self.pck_text(update)
        console.print(f"{self.label}: {update.done}/{update.total} videos{latest}"
                      + (f"; mean so far {scores}" if scores else ""), highlight=False, soft_wrap=True)


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


def _load(model: str, device: Device, dtype: DType, autocast: Autocast, compile_model: bool, local_rank: int,
          launched: bool, preset: str = "paper") -> Any:
    """The model on this process's device: cuda:LOCAL_RANK under a launcher (made the current CUDA device,
    so that plain 'cuda' means it everywhere)."""
    from vidcorr.eval.runner import device_for_rank

    chosen = device_for_rank(device.value, local_rank, launched=launched)
    if chosen.startswith("cuda:"):
        import torch

        torch.cuda.set_device(int(chosen.split(":", 1)[1]))
        return load_model(model, Device.cuda, dtype, autocast, compile_model, preset)
    return load_model(model, device, dtype, autocast, compile_model, preset)


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
    from vidcorr.eval.report import (
        TAPVID_REFERENCE_NOTE,
        coverage,
        protocol_note,
        report_tables,
        setup_line,
        tapvid_coverage,
        tapvid_setup_line,
        tapvid_tables,
        tapvid_title,
        title_of,
    )

    for bench in report.benchmarks:
        console.print(f"[bold]{title_of(bench)}[/]: {coverage(bench)}", highlight=False)
        line = setup_line(bench)
        if line:
            console.print(line, highlight=False, soft_wrap=True)
        protocols = [protocol] if protocol in bench.summaries else list(bench.summaries)[:1]
        for table in report_tables(bench, protocols):
            console.print(render_table(table))
        console.print(protocol_note(bench.dataset), highlight=False, soft_wrap=True)
    for rep in report.tapvid:
        console.print(f"[bold]{tapvid_title(rep)}[/]: {tapvid_coverage(rep)}", highlight=False)
        line = tapvid_setup_line(rep)
        if line:
            console.print(line, highlight=False, soft_wrap=True)
        for table in tapvid_tables(rep):
            console.print(render_table(table))
        if rep.references:
            console.print(f"note: {TAPVID_REFERENCE_NOTE}", highlight=False, soft_wrap=True)


def _evaluate(benchmark: str, *, data_root: Path | None, split: str, categories: list[str] | None,
              limit: int | None, pairs: str | None, alpha: list[float] | None, protocol: Protocol,
              shard: str | None, out: Path | None, download: bool, visualize: bool,
              model: str, preset: str, device: Device, dtype: DType, autocast: Autocast, compile_model: bool,
              seed: int | None, steps: int | None,
              restarts: int | None, crops: int | None, image_size: int | None, max_batch: int | None,
              reader_options: dict[str, Any]) -> None:
    from vidcorr.eval import runner
    from vidcorr.eval.pairs import read_benchmark
    from vidcorr.eval.report import build_report, write_report
    from vidcorr.eval.results import shard_from_env

    if data_root is None:
        raise InputError("give the benchmark folder with --data-root DIR (or set VIDCORR_DATA_ROOT); add "
                         "--download to fetch it there")
    alphas = _alphas(alpha)
    explicit = runner.parse_shard(shard) if shard is not None else None
    launched = shard_from_env() is not None
    placement = runner.resolve_shard(explicit)
    cfg = build_config(preset, seed=seed, num_steps=steps, restarts=restarts, crops=crops, image_size=image_size,
                       max_batch=max_batch)
    out = check_out_dir(out or Path("vidcorr-eval") / f"{benchmark}-{split}")
    if download:
        _download(benchmark, data_root)
    pair_ids = _split_list([pairs] if pairs else None)
    pair_list = read_benchmark(benchmark, data_root, split=split, categories=_split_list(categories), limit=limit,
                               pair_ids=pair_ids, **reader_options)
    if not pair_list:
        raise InputError(f"no {benchmark} pairs to evaluate: the filters (--categories, --pairs, --limit) left none")
    shard_pairs = (placement.index, placement.count)
    todo = runner.pending_pairs(pair_list, out, shard_pairs)

    ldm = _load(model, device, dtype, autocast, compile_model, placement.local_rank, launched, preset)
    if todo:
        warn_if_slow(ldm, cfg, sum(p.num_keypoints for p in todo), 1)
    setup = runner.run_setup(benchmark, split, ldm, cfg, alphas=alphas, **reader_options)
    label = f"{benchmark} {split}" + (f" shard {placement.index}/{placement.count}" if placement.count > 1 else "")
    start = time.perf_counter()
    with EvalDisplay(label) as display:
        def predict(pair: Any, src: Any, trg: Any) -> Any:
            return runner.predict_pair(ldm, pair, src, trg, cfg, return_maps=visualize, progress=display.stage)

        try:
            run = runner.run_eval(pair_list, out, predict, alphas=alphas, protocol=protocol.value,
                                  shard=shard_pairs, setup=setup,
                                  visualize=visualize, progress=display)
        except KeyboardInterrupt:
            done = display.last.done if display.last is not None else 0
            total = display.last.total if display.last is not None else len(todo)
            raise Interrupted(f"interrupted; {done} of {total} pairs are saved in "
                              f"{runner.results_path(out, shard_pairs)}; run the same command again to resume"
                              ) from None
    console.print(f"{run.evaluated} pairs evaluated in {elapsed(start)}, {run.resumed} resumed; results in "
                  f"{run.results_path}", highlight=False, soft_wrap=True)
    steps = cfg.restarts * cfg.num_steps
    warn_skipped_steps(sum(sum(s.extra.get("skipped_steps", [])) for s in run.scores),
                       sum(s.num_keypoints for s in run.scores) * steps)
    if visualize:
        console.print(f"pictures and index: {out / 'vis'}", highlight=False)
    if placement.count > 1:
        console.print(f"shard {placement.index}/{placement.count} done; once every shard is, merge them with: "
                      f"vidcorr eval report {out}", highlight=False, soft_wrap=True)
        return
    report = build_report([out])
    print_report(report, protocol.value)
    json_path, md_path = write_report(report, out)
    console.print(f"wrote {json_path} and {md_path}", highlight=False, soft_wrap=True)


@eval_app.command("spair")
@handle_errors
def spair(
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="trn, val or test.")] = "test",
    categories: CategoriesOpt = None,
    limit: LimitOpt = None,
    pairs: PairsOpt = None,
    alpha: AlphaOpt = None,
    protocol: ProtocolOpt = Protocol.official,
    shard: ShardOpt = None,
    out: OutOpt = None,
    download: DownloadOpt = False,
    visualize: VisualizeOpt = False,
    model: ModelOpt = "CompVis/stable-diffusion-v1-4",
    preset: PresetOpt = "paper",
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    autocast: AutocastOpt = Autocast.auto,
    compile_model: CompileOpt = False,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    restarts: RestartsOpt = None,
    crops: CropsOpt = None,
    image_size: ImageSizeOpt = None,
    max_batch: MaxBatchOpt = None,
) -> None:
    """SPair-71k: 12,234 test pairs in 18 categories (paper: 28.9 / 45.4 at PCK@0.05 / 0.10).

    PCK per image and per keypoint, pooled, per category and by viewpoint, scale, truncation and occlusion.
    """
    _evaluate("spair", **locals(), reader_options={})


@eval_app.command("pfwillow")
@handle_errors
def pfwillow(
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="PF-Willow has only test.")] = "test",
    categories: CategoriesOpt = None,
    limit: LimitOpt = None,
    pairs: PairsOpt = None,
    alpha: AlphaOpt = None,
    protocol: ProtocolOpt = Protocol.official,
    shard: ShardOpt = None,
    out: OutOpt = None,
    download: DownloadOpt = False,
    visualize: VisualizeOpt = False,
    model: ModelOpt = "CompVis/stable-diffusion-v1-4",
    preset: PresetOpt = "paper",
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    autocast: AutocastOpt = Autocast.auto,
    compile_model: CompileOpt = False,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    restarts: RestartsOpt = None,
    crops: CropsOpt = None,
    image_size: ImageSizeOpt = None,
    max_batch: MaxBatchOpt = None,
) -> None:
    """PF-Willow: 900 pairs, 10 keypoints each (paper: 53.0 / 84.3 at PCK@0.05 / 0.10)."""
    _evaluate("pfwillow", **locals(), reader_options={})


@eval_app.command("cub")
@handle_errors
def cub(
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="train or test.")] = "test",
    num_classes: Annotated[int, typer.Option(
        "--num-classes", help="Pair the images of classes 1..N (the seed's 3); 0 for all 200.")] = 3,
    categories: CategoriesOpt = None,
    limit: LimitOpt = None,
    pairs: PairsOpt = None,
    alpha: AlphaOpt = None,
    protocol: ProtocolOpt = Protocol.official,
    shard: ShardOpt = None,
    out: OutOpt = None,
    download: DownloadOpt = False,
    visualize: VisualizeOpt = False,
    model: ModelOpt = "CompVis/stable-diffusion-v1-4",
    preset: PresetOpt = "paper",
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    autocast: AutocastOpt = Autocast.auto,
    compile_model: CompileOpt = False,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    restarts: RestartsOpt = None,
    crops: CropsOpt = None,
    image_size: ImageSizeOpt = None,
    max_batch: MaxBatchOpt = None,
) -> None:
    """CUB-200-2011: every two test images of a class (paper: 61.6 / 77.5 at PCK@0.05 / 0.10).

    The seed's pairing: the test images of classes 1..3 unless --num-classes says otherwise.
    """
    options = locals()
    classes = options.pop("num_classes")
    if classes < 0:
        raise InputError(f"--num-classes must be >= 0 (0 for all), got {classes}")
    _evaluate("cub", **options, reader_options={"num_classes": classes or None})


@eval_app.command("tapvid")
@handle_errors
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
    shard: ShardOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run folder: results, predictions, run.json, report (default: "
        "vidcorr-eval/tapvid-DATASET-MODE). Re-running into it resumes.")] = None,
    model: ModelOpt = "CompVis/stable-diffusion-v1-4",
    preset: PresetOpt = "paper",
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    autocast: AutocastOpt = Autocast.auto,
    compile_model: CompileOpt = False,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    restarts: RestartsOpt = None,
    crops: CropsOpt = None,
    image_size: ImageSizeOpt = None,
    max_batch: MaxBatchOpt = None,
) -> None:
    """TAP-Vid point tracking with tapnet's metrics: AJ, δ_avg and OA per video, then the mean over videos.

    Queries are built as tapnet builds them; each is fitted on its own frame and tracked through the video;
    predicted occlusion is "not visible". Other trackers' published numbers are shown for scale.
    """
    from vidcorr.eval import runner, tapvid_runner
    from vidcorr.eval.report import build_report, write_report
    from vidcorr.eval.results import shard_from_env

    if data_root is None:
        raise InputError("give the TAP-Vid data with --data-root PATH (the pickle, the Kinetics shard folder, or a "
                         "folder holding them; or set VIDCORR_DATA_ROOT)")
    explicit = runner.parse_shard(shard) if shard is not None else None
    launched = shard_from_env() is not None
    placement = runner.resolve_shard(explicit)
    cfg = build_config(preset, seed=seed, num_steps=steps, restarts=restarts, crops=crops, image_size=image_size,
                       max_batch=max_batch)
    threshold = {} if visibility_threshold is None else {"visibility_threshold": visibility_threshold}
    mode = query_mode.value
    out = check_out_dir(out or Path("vidcorr-eval") / f"tapvid-{dataset.value}-{mode}{'-fullres' if full_res else ''}")
    source = tapvid_runner.TapVidSource(dataset.value, tapvid_runner.resolve_tapvid_path(dataset.value, data_root),
                                        full_res, tuple(_split_list(videos) or ()), limit)
    names = source.names()
    if not names:
        raise InputError(f"no {dataset.value} videos to evaluate: the filters (--videos, --limit) left none")
    shard_videos = (placement.index, placement.count)
    todo = tapvid_runner.pending_videos(names, out, (dataset.value, mode, full_res), shard_videos)

    ldm = _load(model, device, dtype, autocast, compile_model, placement.local_rank, launched, preset)
    if todo and ldm.device.type == "cpu" and ldm.is_full_size:
        err_console.print("[bold yellow]warning:[/] a full-size model on a CPU tracks one TAP-Vid video in hours; "
                          "use a GPU, or --preset fast and --limit for a smoke run", soft_wrap=True)
    setup = tapvid_runner.tapvid_setup(source, mode, ldm, cfg, **threshold)
    label = f"tapvid {dataset.value} {mode}" + (f" shard {placement.index}/{placement.count}"
                                                 if placement.count > 1 else "")
    start = time.perf_counter()
    with TapVidDisplay(label) as display:
        def predict(video: Any, queries: Any) -> Any:
            return tapvid_runner.predict_video(ldm, video, queries, cfg, progress=display.stage, **threshold)

        try:
            run = tapvid_runner.run_tapvid(source, out, predict, query_mode=mode, shard=shard_videos, setup=setup,
                                           names=names, progress=display)
        except KeyboardInterrupt:
            done = display.last.done if display.last is not None else 0
            total = display.last.total if display.last is not None else len(todo)
            raise Interrupted(f"interrupted; {done} of {total} videos are saved in "
                              f"{tapvid_runner.video_results_path(out, shard_videos)}; run the same command again "
                              "to resume") from None
    console.print(f"{run.evaluated} videos evaluated in {elapsed(start)}, {run.resumed} resumed; results in "
                  f"{run.results_path}", highlight=False, soft_wrap=True)
    if placement.count > 1:
        console.print(f"shard {placement.index}/{placement.count} done; once every shard is, merge them with: "
                      f"vidcorr eval report {out}", highlight=False, soft_wrap=True)
        return
    report = build_report([out])
    print_report(report, Protocol.official.value)
    json_path, md_path = write_report(report, out)
    console.print(f"wrote {json_path} and {md_path}", highlight=False, soft_wrap=True)


@eval_app.command("report")
@handle_errors
def report(
    results: Annotated[list[Path], typer.Argument(help="Results files or run folders; shards are merged.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Where to write report.json and report.md (default: the first results' folder).")] = None,
    protocol: ProtocolOpt = Protocol.official,
) -> None:
    """Merge results files or run folders and print the PCK tables beside the paper's, and TAP-Vid tables.

    Shards are deduplicated by pair id or video (two different predictions for one is an error); writes
    report.json and report.md. TAP-Vid: the mean over videos beside other trackers' published numbers, and a
    per-video table.
    """
    from vidcorr.eval.report import build_report, write_report

    built = build_report(results)
    print_report(built, protocol.value)
    folder = out or (results[0] if results[0].is_dir() else results[0].parent)
    json_path, md_path = write_report(built, check_out_dir(folder))
    console.print(f"wrote {json_path} and {md_path}", highlight=False, soft_wrap=True)
