"""`vidcorr track` on many videos: the batch's progress display and its summary (the work is
``vidcorr.batch.track_many``'s)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vidcorr.errors import VidcorrError
from vidcorr.io.points import (
    check_point_sources,
    has_video_column,
    read_points_file,
    read_video_points_file,
)

from .common import ModelOptions, console, elapsed, err_console, format_seconds, outputs_complete, warn_if_slow
from .eval import _load as load_on_rank

if TYPE_CHECKING:
    from vidcorr.pipelines.options import TrackOptions

    from .track import BatchArgs, PointsArgs

DEFAULT_BATCH_OUT = Path("vidcorr_batch")


class BatchFailed(VidcorrError):
    """Some videos of the batch failed (each recorded with its reason); the others are done."""

    exit_code = 1


class Interrupted(VidcorrError):
    """Ctrl-C during a batch: the finished videos are saved, the one in progress has its checkpoint."""

    exit_code = 130


class BatchDisplay:
    """Videos done/total, frames done/total with the ETA over all, and the current video's frames.

    On a terminal (and not under a multi-process launcher): rich bars. Elsewhere (SLURM logs, each torchrun
    rank): one plain line per finished video, and at most one every `plain_every_s` seconds inside a video,
    each prefixed with the shard, so ranks never interleave bars.
    """

    def __init__(self, label: str, *, plain: bool, plain_every_s: float = 30.0) -> None:
        self.label = label
        self.enabled = console.is_terminal and not plain
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=console, disable=not self.enabled)
        self.tasks: dict[str, TaskID] = {}
        self.plain_every_s = plain_every_s
        self.last_plain = -math.inf
        self.start = time.perf_counter()
        self.first_frames: float | None = None
        self.last: Any = None

    def __enter__(self) -> BatchDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def _task(self, key: str, label: str, total: float) -> TaskID:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=total)
        return self.tasks[key]

    def __call__(self, update: Any) -> None:
        """The library's BatchProgress callback."""
        self.last = update
        if self.first_frames is None:
            self.first_frames = update.frames_done
        if self.enabled:
            self.progress.update(self._task("videos", f"{self.label} videos", update.total), completed=update.done)
            self.progress.update(self._task("frames", "  frames (all videos)", update.frames_total),
                                 completed=update.frames_done)
            label = f"  {update.video} frames" if update.video else "  current video"
            self.progress.update(self._task("video", label, max(update.video_total, 1)), description=label,
                                 completed=update.video_done, total=max(update.video_total, 1))
            return
        now = time.perf_counter()
        if update.finished is None and now - self.last_plain < self.plain_every_s:
            return
        self.last_plain = now
        console.print(self.line(update), highlight=False, soft_wrap=True)

    def line(self, update: Any) -> str:
        """One plain progress line."""
        rate = (update.frames_done - (self.first_frames or 0.0)) / max(time.perf_counter() - self.start, 1e-9)
        left = update.frames_total - update.frames_done
        eta = f", ETA {format_seconds(left / rate)}" if rate > 0 and left > 0 else ""
        failed = f" ({update.failed} failed)" if update.failed else ""
        text = (f"{self.label}: {update.done}/{update.total} videos{failed}, "
                f"{update.frames_done:.0f}/{update.frames_total} frames{eta}")
        if update.finished is not None:
            text += f"; {update.finished} {update.status} in {format_seconds(update.seconds or 0.0)}"
        elif update.video is not None:
            text += f"; {update.video} frame {update.video_done}/{update.video_total}"
        elif update.resumed:
            text += f"; {update.resumed} done before"
        return text


def batch_points(wanted: PointsArgs) -> Any:
    """The batch's points: a points file with a video column (video -> queries, resolved by the library),
    or the --points/--grid/--points-file queries applied to every video (a function of its info)."""
    points_file = wanted.points_file
    # Checked once, before any work: otherwise each video would fail alike, after the model loads.
    check_point_sources(wanted.points, points_file, wanted.grid, wanted.mask, wanted.mask_id)
    if points_file is not None and wanted.points is None and wanted.grid is None and has_video_column(points_file):
        return ("per-video", points_file)
    if points_file is not None:
        read_points_file(points_file)  # a bad file fails once, before any video
    return wanted.queries


def run_batch_command(inputs: list[str], wanted: PointsArgs, embeddings_file: Path | None, out: Path | None,
                      track_options: TrackOptions, options: ModelOptions, batch_args: BatchArgs) -> None:
    """Check the batch, load the model on this process's device, track, summarise; exit 1 if a video failed."""
    # The pipeline imports torch: loaded when a batch runs.
    from vidcorr.pipelines import batch
    from vidcorr.runs.shards import parse_shard, shard_from_env

    spec: Any = None
    if wanted.given or embeddings_file is None:
        spec = batch_points(wanted)
        if isinstance(spec, tuple):  # per-video points: matched to the batch's videos by prepare_batch
            spec = batch.PerVideoPoints(read_video_points_file(spec[1]), spec[1].parent)
    run = batch.BatchOptions(batch_args.list_file, shard=None if batch_args.shard is None
                             else parse_shard(batch_args.shard), checkpoint_every=batch_args.checkpoint_every)
    job = batch.prepare_batch(inputs, out or DEFAULT_BATCH_OUT, points=spec, embeddings=embeddings_file,
                              preset=options.preset, overrides=options.overrides(), options=track_options, run=run)
    launched = shard_from_env() is not None
    ldm = load_on_rank(options, job.shard, launched)
    pending = job.pending
    if pending:
        warn_if_slow(ldm, job.cfg, job.points_to_fit, sum(v.tracked for v in pending))
    label = "batch" + (f" shard {job.shard.index}/{job.shard.count}" if job.shard.count > 1 else "")
    display = BatchDisplay(label, plain=launched and job.shard.count > 1)
    stage = _stage_bar(display)
    began = time.perf_counter()
    with display:
        try:
            outcome = batch.run_batch(ldm, job, progress=display, stage=stage)
        except KeyboardInterrupt:
            last = display.last
            done = f"{last.done} of {last.total} videos are" if last is not None else "the finished videos are"
            raise Interrupted(f"interrupted; {done} saved in {job.out} (the one in progress has a checkpoint); run "
                              "the same command again to resume") from None
    if outcome.ok:
        outputs_complete()
    _summary(outcome, elapsed(began))


def _stage_bar(display: BatchDisplay) -> Callable[[str, int, int], None]:
    def stage(name: str, done: int, total: int) -> None:
        if not display.enabled or name == "track":
            return
        label = {"fit": "  fit steps", "locate": "  locate crops"}.get(name, f"  {name}")
        task = display._task("stage", label, total)
        display.progress.update(task, description=label, completed=done, total=total)

    return stage


def _summary(outcome: Any, took: str) -> None:
    shard = f" (shard {outcome.shard[0]}/{outcome.shard[1]})" if outcome.shard[1] > 1 else ""
    elsewhere = f", {len(outcome.elsewhere)} left to another process" if outcome.elsewhere else ""
    console.print(f"batch{shard}: {outcome.done} done, {outcome.skipped} skipped (done before), "
                  f"{len(outcome.failed)} failed{elsewhere}, of {outcome.total} videos, in {took}; index: "
                  f"{outcome.index_path}", highlight=False, soft_wrap=True)
    if outcome.shard[1] > 1:
        console.print(f"batch.json lists every shard's videos as they finish; once all shards are done, re-run "
                      f"without --shard to check the whole batch into {outcome.out}", highlight=False, soft_wrap=True)
    for video, reason in outcome.failed:
        err_console.print(f"[bold red]failed:[/] {video}: {reason}", highlight=False, soft_wrap=True)
    if outcome.failed:
        raise BatchFailed(f"{len(outcome.failed)} of {outcome.total} videos failed (listed above and in "
                          f"{outcome.index_path}); re-run the same command to retry them")
