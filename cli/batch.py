"""`vidcorr track` on many videos: the batch's progress display and its summary (the work is
``vidcorr.batch.track_many``'s)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidcorr.errors import VidcorrError
from vidcorr.io.points import (
    check_point_sources,
    has_video_column,
    read_points_file,
    read_video_points_file,
)

from .common import ModelOptions, console, elapsed, err_console, outputs_complete, warn_if_slow
from .display import Display
from .eval import _load as load_on_rank

if TYPE_CHECKING:
    from vidcorr.pipelines.options import TrackOptions

    from .points import PointsArgs

DEFAULT_BATCH_OUT = Path("vidcorr_batch")


@dataclass(frozen=True)
class BatchArgs:
    """The batch options of `vidcorr track` as given."""

    list_file: Path | None
    shard: str | None
    checkpoint_every: int | None
    reuse: Path | None = None


class BatchFailed(VidcorrError):
    """Some videos of the batch failed (each recorded with its reason); the others are done."""

    exit_code = 1


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
    return wanted.labels


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
                              preset=options.preset, overrides=options.overrides(), options=track_options, run=run,
                              reuse=batch_args.reuse, model=options.model)
    launched = shard_from_env() is not None
    ldm = load_on_rank(options, job.shard, launched)
    pending = job.pending
    if pending:
        warn_if_slow(ldm, job.cfg, job.points_to_fit, sum(v.tracked for v in pending))
    label = "batch" + (f" shard {job.shard.index}/{job.shard.count}" if job.shard.count > 1 else "")
    display = Display(label, "videos", plain=launched and job.shard.count > 1)
    began = time.perf_counter()
    with display:
        try:
            outcome = batch.run_batch(ldm, job, progress=display.items, stage=display)
        except KeyboardInterrupt:
            raise display.interrupted(f"{job.out} (the one in progress has a checkpoint)") from None
    if outcome.ok:
        outputs_complete()
    _summary(outcome, elapsed(began))


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
