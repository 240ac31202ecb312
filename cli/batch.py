"""`vidcorr track` on many videos: the batch's progress display and its summary (the work is
``vidcorr.batch.track_many``'s)."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
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

from .common import ModelOptions, console, elapsed, err_console, format_seconds, warn_if_slow
from .eval import _load as load_on_rank
from .points import read_points_file, video_queries

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


def has_video_column(path: Path) -> bool:
    """Whether a points file names a video per row (a ``video`` column or key), rather than t,x,y rows that
    apply to every video."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False  # read_points_file reports it
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return False
        if isinstance(data, dict) and "points" in data:
            data = data["points"]
        if isinstance(data, dict):
            return True  # video -> rows
        return isinstance(data, list) and any(isinstance(item, dict) and "video" in item for item in data)
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        return False
    first = [c.strip().lower() for c in rows[0]]
    if "video" in first:
        return True
    try:
        float(first[0])
    except ValueError:
        return len(first) >= 3 and all(_number(c) for c in first[1:])
    return False


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def batch_points(points: str | None, points_file: Path | None, grid: int | None,
                 ref_frame: int, mask: Path | None, mask_id: int | None) -> Any:
    """The batch's points: a points file with a video column (video -> queries, resolved by the library),
    or the --points/--grid/--points-file queries applied to every video (a function of its info)."""
    if points_file is not None and points is None and grid is None and has_video_column(points_file):
        return ("per-video", points_file)
    if points_file is not None:
        read_points_file(points_file, columns=3)  # a bad file fails once, before any video

    def queries(info: Any) -> np.ndarray:
        return video_queries(points, points_file, grid, ref_frame, info.num_frames, info.size, mask, mask_id)

    return queries


def run_batch_command(inputs: list[str], *, list_file: Path | None, shard: str | None, checkpoint_every: int | None,
                      points: str | None, points_file: Path | None, grid: int | None, ref_frame: int,
                      mask: Path | None, mask_id: int | None, embeddings_file: Path | None, out: Path | None,
                      track_options: dict[str, Any], options: ModelOptions) -> None:
    """Check the batch, load the model on this process's device, track, summarise; exit 1 if a video failed."""
    from vidcorr.pipelines import batch
    from vidcorr.runs.inputs import expand_inputs, points_for_videos, read_video_points_file
    from vidcorr.runs.shards import parse_shard, shard_from_env

    explicit = parse_shard(shard) if shard is not None else None
    given = points is not None or points_file is not None or grid is not None or mask is not None
    spec: Any = None
    if given or embeddings_file is None:
        spec = batch_points(points, points_file, grid, ref_frame, mask, mask_id)
        if isinstance(spec, tuple):  # per-video points: match the file's videos to the batch's
            videos = expand_inputs(inputs, list_file)
            spec = points_for_videos(read_video_points_file(spec[1]), videos, base=spec[1].parent)
    out = out or DEFAULT_BATCH_OUT
    job = batch.prepare_batch(inputs, out, list_file=list_file, points=spec, embeddings=embeddings_file,
                              preset=options.preset, overrides=options.overrides(), shard=explicit,
                              checkpoint_every=checkpoint_every, **track_options)
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
    console.print(f"batch{shard}: {outcome.done} done, {outcome.skipped} skipped (done before), "
                  f"{len(outcome.failed)} failed, of {outcome.total} videos, in {took}; index: {outcome.index_path}",
                  highlight=False, soft_wrap=True)
    if outcome.shard[1] > 1:
        console.print(f"batch.json lists every shard's videos as they finish; once all shards are done, re-run "
                      f"without --shard to check the whole batch into {outcome.out}", highlight=False, soft_wrap=True)
    for video, reason in outcome.failed:
        err_console.print(f"[bold red]failed:[/] {video}: {reason}", highlight=False, soft_wrap=True)
    if outcome.failed:
        raise BatchFailed(f"{len(outcome.failed)} of {outcome.total} videos failed (listed above and in "
                          f"{outcome.index_path}); re-run the same command to retry them")
