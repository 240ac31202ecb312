"""The pipeline behind ``vidcorr track``: inputs checked, the method run, outputs written.

Two steps, so that a caller (the CLI, a notebook) can check everything before it loads a model:
:func:`prepare_track` reads and validates the video, the points (or embeddings), the frame range and the output
folder and builds the config (no model, no torch work); :func:`run_track` fits, tracks and writes every output
through one :class:`~vidcorr.io.outputs.OutputFolder`. :func:`track_to_folder` does both. With ``reuse`` (an
earlier output), the points whose labels did not change keep that output's embeddings byte for byte and only the
others are fitted again (:func:`vidcorr.method.reuse.refit_changed`): the labelling loop's re-track.

    job = prepare_track("clip.mp4", "clip_vidcorr", queries=[[0, 60, 90]])
    ldm = vidcorr.LDM.from_pretrained(vidcorr.DEFAULT_MODEL, device="cuda")
    result = run_track(ldm, job)            # result.tracks.points (T, N, 2); result.written
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr import memory
from vidcorr.config import Config, config_for
from vidcorr.errors import InputError
from vidcorr.io.names import ANNOTATED_VIDEO, EMBEDDINGS
from vidcorr.io.outputs import OutputFolder
from vidcorr.io.points import PointLabels, ReusePlan, check_labels, plan_reuse
from vidcorr.io.reader import KeptFrames, VideoInfo, VideoReader
from vidcorr.io.render import RenderStyle, render_video
from vidcorr.io.tracks import Tracks, hide_marked
from vidcorr.io.video import open_video
from vidcorr.memory import ModelSize
from vidcorr.method import checkpoint as resume
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress
from vidcorr.method.locate import Location, locate
from vidcorr.method.microbatch import device_available
from vidcorr.method.model import LDM
from vidcorr.method.reuse import refit_changed
from vidcorr.method.track import fit_queries, track
from vidcorr.pipelines.options import TrackOptions
from vidcorr.web.visuals import (
    KeyFrameMaps,
    ViewOptions,
    choose_key_frames,
    write_track_visuals,
)


def add_reference_maps(maps: KeyFrameMaps, ldm: LDM, video: VideoReader, embeddings: Embeddings,
                       cfg: Config | None = None, progress: Progress | None = None) -> dict[int, Location]:
    """Locate each point on each of its labelled frames with maps, as :func:`vidcorr.fit_queries` does for the
    confidence scale (same random streams and anchors: the same draws), and keep the maps in `maps`.

    Tracking does not locate a point on its labelled frames, so the viewer's reference maps come from here.

    Returns:
        labelled frame -> the Location of the points labelled on it (in point order).
    """
    if embeddings.frames is None:
        raise InputError("these embeddings were fitted on an image, not a video frame: they have no reference frame")
    labels = embeddings.point_labels().labels
    located = {}
    for t in sorted({int(t) for rows in labels for t in rows[:, 0]}):
        owners = [(n, k) for n, rows in enumerate(labels) for k in np.flatnonzero(rows[:, 0] == t)]
        idx = np.array([n for n, _ in owners], dtype=np.int64)
        loc = locate(ldm, video.get_frame(t), embeddings.subset(idx), cfg, progress=progress, return_maps=True,
                     stream_key=t, point_ids=idx.tolist(), anchors_xy=np.array([labels[n][k, 1:] for n, k in owners]))
        maps.add(t, idx, loc.maps)
        located[t] = loc
    return located


QuerySpec = PointLabels | np.ndarray | Callable[[VideoInfo], PointLabels | np.ndarray]
"""The points' labels, (N, 3) t, x, y queries (one label per point), or a function of the video's info giving
either (e.g. a grid on its size)."""


@dataclass(frozen=True)
class TrackJob:
    """A checked ``track`` run, ready for a model (see :func:`prepare_track`).

    Attributes:
        video: the video's path; reader: it, opened.
        out: the output folder (checked, not created yet).
        cfg: the config of the run.
        queries: the points' labels to fit (checked), or None when `embeddings` are given.
        embeddings: loaded embeddings to track with (no fit), or None.
        global_search: the embeddings come from another video: no frame is a reference.
        frames: the tracked frame indices (the options' start, end, stride applied).
        options: the run's :class:`TrackOptions`.
        reuse: an earlier output's embeddings (on this video) that the points with unchanged labels keep, or None.
    """

    video: Path
    reader: VideoReader
    out: OutputFolder
    cfg: Config
    queries: PointLabels | None
    embeddings: Embeddings | None
    global_search: bool
    frames: np.ndarray
    options: TrackOptions = TrackOptions()
    reuse: Embeddings | None = None

    @property
    def reuse_plan(self) -> ReusePlan | None:
        """Which points keep `reuse`'s embeddings and which are fitted again (None without `reuse`)."""
        if self.reuse is None or self.queries is None:
            return None
        return plan_reuse(self.reuse.point_labels(), self.queries)

    @property
    def num_points(self) -> int:
        """N, the points tracked."""
        if self.embeddings is not None:
            return self.embeddings.num_points
        assert self.queries is not None  # prepare_track gives exactly one of queries and embeddings
        return self.queries.num_points

    @property
    def points_to_fit(self) -> int:
        """The points this run fits (0 with loaded embeddings; with `reuse`, those whose labels changed)."""
        plan = self.reuse_plan
        return len(plan.refit) if plan is not None else 0 if self.embeddings is not None else self.num_points

    def check_memory(self, sizes: ModelSize, device_available: float | None = None) -> None:
        """Refuse, in one line with the estimate, a run whose points, frames and outputs cannot fit in memory
        (`vidcorr.memory`): `sizes` are the model's (before it loads, `memory.model_floor` of its name)."""
        self.options.check_memory(self.num_points, len(self.frames), self.cfg, sizes, fit=self.embeddings is None,
                                  labels=1 if self.queries is None else int(max(self.queries.counts)),
                                  query_frames=len(self.query_frames), device_available=device_available)

    @property
    def query_frames(self) -> list[int]:
        """The frames the points are labelled on (none under global search)."""
        if self.global_search:
            return []
        labelled = self.embeddings.point_labels() if self.embeddings is not None else self.queries
        return [] if labelled is None else sorted({int(t) for rows in labelled.labels for t in rows[:, 0]})


@dataclass(frozen=True)
class TrackResult:
    """What :func:`run_track` made.

    Attributes:
        tracks: points (T, N, 2), visible (T, N), confidence (T, N), queries (N, 3), frame_indices (T,).
        embeddings: the embeddings tracked with (fitted here unless `fitted` is False).
        fitted: whether the embeddings were fitted in this run (then written as ``embeddings.safetensors``).
        out_dir: the output folder.
        written: the files written, in order (``annotated.mp4``, ``tracks.*``, ...).
        refitted: with `reuse`, the ids of the points fitted again (the others kept the earlier embeddings); else
            None.
    """

    tracks: Tracks
    embeddings: Embeddings
    fitted: bool
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """One-line warnings for the caller to show (e.g. the mp4v fallback where no H.264 encoder is found)."""
    refitted: list[str] | None = None


def prepare_track(video: str | os.PathLike, out: str | os.PathLike | None = None, *,
                  queries: QuerySpec | None = None, embeddings: str | os.PathLike | Embeddings | None = None,
                  preset: str | None = None, overrides: Mapping[str, Any] | None = None,
                  options: TrackOptions | None = None, overwrite: bool = False,
                  overwrite_hint: str = "overwrite=True",
                  reuse: str | os.PathLike | Embeddings | None = None, model: str | None = None) -> TrackJob:
    """Check a track run before any model work: the video, the output folder, the frame range, the queries or
    embeddings, the config.

    Args:
        video: a video file or a folder of frames.
        out: the output folder (default ``<video stem>_vidcorr``).
        queries: what to fit (see :data:`QuerySpec`); exactly one of `queries` and `embeddings`.
        embeddings: fitted embeddings (or their safetensors file) to track with: anchored on their labelled frames
            when fitted on this video (decided from its frames' content, `Embeddings.fitted_on`, unless
            ``options.same_video`` says), else searched globally.
        preset, overrides: the config (see :func:`config_for`; None values are "not set").
        options: the frames, visibility and outputs (:class:`TrackOptions`; None: the defaults).
        overwrite: replace an earlier run in `out` (whole) instead of refusing; overwrite_hint: how the
            caller's user asks for that, for the refusal's message (the CLI: "--overwrite").
        reuse: an earlier track output of this video (its folder, its ``embeddings.safetensors``, or loaded
            Embeddings): points of `queries` whose labels equal the ones it was fitted on keep its embeddings, the
            others are fitted again, with its config (`preset` and `overrides` change only how points are
            located). Read here, so `out` may be that output itself (with `overwrite`).
        model: the name of the model that will run it (``tiny``, a hub id, a folder), for the memory check
            before it loads (`memory.model_floor`; None: the smallest model's sizes). :func:`run_track` checks again
            with the model's own.

    Raises:
        InputError: bad inputs (one line naming the problem), `out` holding a run already (without
            `overwrite`), a run that cannot fit in memory (one line with the estimate).
            EmbeddingsMismatchError: at :func:`run_track`.
    """
    video, options = Path(video), options or TrackOptions()
    folder = OutputFolder(out if out is not None else Path(f"{video.stem}_vidcorr"), overwrite=overwrite,
                          overwrite_hint=overwrite_hint)
    reader = open_video(video, fps=options.fps)
    info = reader.info
    frames = reader.frame_indices(options.start, options.end, options.stride)  # a bad range fails before any work
    loaded: Embeddings | None = None
    checked: PointLabels | None = None
    global_search = False
    earlier = None if reuse is None else reused_embeddings(reuse, info)
    if earlier is not None and (queries is None or embeddings is not None):
        raise InputError("--reuse needs the points to track (--points-file), not --embeddings")
    if embeddings is not None:
        if queries is not None:
            raise InputError("give either --embeddings or points to fit (--points, --points-file, --grid), not both")
        loaded = embeddings if isinstance(embeddings, Embeddings) else Embeddings.load(embeddings)
        cfg = config_for(preset, overrides, fitted=loaded.config)
        # Embeddings from another video: their reference frames mean nothing here.
        same = loaded.fitted_on(reader) if options.same_video is None else options.same_video
        if same and loaded.frames is None:
            raise InputError("these embeddings were fitted on an image, not on a video's frames: they cannot be "
                             "anchored on this video's frames (drop --same-video)")
        if same:
            check_labels(loaded.point_labels(), info.num_frames, info.size)
        global_search = not same
    else:
        options.check_same_video(False)
        if queries is None:
            raise InputError("give the points to track (queries) or fitted embeddings")
        given = queries(info) if callable(queries) else queries
        checked = check_labels(given, info.num_frames, info.size)
        cfg = config_for(preset, overrides, fitted=None if earlier is None else earlier.config)
    job = TrackJob(video, reader, folder, cfg, checked, loaded, global_search, frames, options, earlier)
    if options.heatmap is not None and not 0 <= options.heatmap < job.num_points:
        raise InputError(f"--heatmap {options.heatmap} is not a point id (0..{job.num_points - 1})")
    job.check_memory(memory.model_floor(model))
    return job


def reused_embeddings(reuse: str | os.PathLike | Embeddings, info: VideoInfo) -> Embeddings:
    """The embeddings of an earlier output to reuse (its folder or its file), checked to be fitted on a video like
    `info`'s (size and frame count).

    Raises:
        InputError: no embeddings there, or fitted on an image or on another video.
    """
    if isinstance(reuse, Embeddings):
        earlier, name = reuse, "the embeddings to reuse"
    else:
        path = Path(reuse)
        file = path / EMBEDDINGS if path.is_dir() else path
        if not file.is_file():
            raise InputError(f"--reuse {str(path)!r}: no {EMBEDDINGS} there (give a track output folder or its "
                             "embeddings file)")
        earlier, name = Embeddings.load(file), f"--reuse {str(path)!r}"
    if earlier.frames is None or earlier.extra.get("video_size") != list(info.size) \
            or earlier.extra.get("video_frames") != info.num_frames:
        raise InputError(f"{name} was not fitted on this video ({info.width}x{info.height}, {info.num_frames} "
                         "frames): track it afresh")
    return earlier


@dataclass
class _Tracked:
    """What tracking hands to the writers: the tracks, their embeddings, and the maps collected on the way."""

    tracks: Tracks
    embeddings: Embeddings
    key_frames: list[int]
    key_maps: KeyFrameMaps | None
    heat: dict[int, np.ndarray]
    refitted: list[str] | None = None


def run_track(ldm: LDM, job: TrackJob, *, progress: Progress | None = None,
              checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None) -> TrackResult:
    """Fit (unless the job has embeddings), track, and write the outputs into ``job.out``.

    Writes ``annotated.mp4`` (unless ``job.options.video_out`` is False) first: an interrupt while rendering
    leaves the folder empty. Then ``tracks.npz``, ``tracks.csv``, ``tracks.json``, ``embeddings.safetensors``
    (when fitted here) and ``keyframes/`` (unless ``job.options.keyframes`` is 0).

    Each tracked frame is decoded by the sweeps (once, or once per sweep where both sweeps pass it: frames
    between the first and the last query frame) and once more to render; the query frames and the key frames
    are kept when first decoded (:class:`~vidcorr.io.reader.KeptFrames`), so the fit, the reference maps and
    the key frames decode nothing again.

    Args:
        ldm: the model.
        job: from :func:`prepare_track`.
        progress: ``progress(stage, done, total)`` for the stages ``fit``, ``locate`` and ``track``.
        checkpoint, checkpoint_every: resume the tracking from / save it to this checkpoint (see
            :func:`vidcorr.track`); the fitted embeddings are kept beside it, so a resumed run never fits again.
            With a heat map every frame's maps are replayed on resume, so the outputs equal an uninterrupted
            run's too.

    Returns:
        The :class:`TrackResult`.
    """
    job.check_memory(ldm.sizes, device_available(ldm))
    key_frames = choose_key_frames(job.frames, job.options.keyframes, always=job.query_frames)
    reader = KeptFrames(job.reader, [*key_frames, *job.query_frames])
    tracked = _track(ldm, job, reader, key_frames, progress, checkpoint, checkpoint_every)
    tracked.tracks.meta["video"] = str(job.video)
    if job.queries is not None and job.queries.hidden:  # the "not visible here" marks hold over the tracker
        tracked.tracks.labels = job.queries
        hide_marked(tracked.tracks)
    if tracked.refitted is not None:
        tracked.tracks.meta["refitted"] = tracked.refitted
    warnings: list[str] = []
    with job.out.writing():  # a hidden staging folder, made the output folder whole at the end (or deleted)
        _write_outputs(job, reader, tracked, warnings, progress)
    return TrackResult(tracked.tracks, tracked.embeddings, job.queries is not None, job.out.final,
                       list(job.out.written), warnings, tracked.refitted)


def _track(ldm: LDM, job: TrackJob, reader: VideoReader, key_frames: list[int], progress: Progress | None,
           checkpoint: str | os.PathLike | None, checkpoint_every: int | None) -> _Tracked:
    """Fit and track, collecting the heat map and key frames' maps as frames are located."""
    heatmap, options = job.options.heatmap, job.options
    heat: dict[int, np.ndarray] = {}
    key_maps = KeyFrameMaps([*key_frames, *job.query_frames]) if options.keyframes else None

    def on_frame(frame: int, active: np.ndarray, loc: Location) -> None:
        hit = np.flatnonzero(active == heatmap) if heatmap is not None else np.zeros(0, dtype=np.int64)
        if len(hit) and loc.maps is not None:
            heat[frame] = loc.maps[hit[0]].mean(dim=0).numpy()
        if key_maps is not None:
            key_maps(frame, active, loc)

    return_maps: bool | set[int] = True if heatmap is not None else {int(f) for f in key_frames}
    if checkpoint is not None and return_maps is True:
        return_maps = {int(f) for f in job.frames}  # replayed on resume (True would not be)
    embeddings, refitted = job.embeddings, None
    if job.reuse is not None:
        embeddings, refitted = _reuse(ldm, job, reader, progress, checkpoint)
    elif embeddings is None and checkpoint is None:
        embeddings = fit_queries(ldm, reader, job.queries, job.cfg, progress=progress)  # type: ignore[arg-type]
    tracks = track(ldm, reader, job.queries if embeddings is None else None, job.cfg, embeddings=embeddings,
                   global_search=job.global_search, start=options.start, end=options.end, stride=options.stride,
                   visibility_threshold=options.visibility_threshold, progress=progress, on_frame=on_frame,
                   return_maps=return_maps, checkpoint=checkpoint, checkpoint_every=checkpoint_every)
    if embeddings is None:  # fitted inside track, kept beside its checkpoint
        embeddings = Embeddings.load(resume.embeddings_path(checkpoint))  # type: ignore[arg-type]
    if key_maps is not None and not job.global_search:
        add_reference_maps(key_maps, ldm, reader, embeddings, job.cfg, progress=progress)
    return _Tracked(tracks, embeddings, key_frames, key_maps, heat, refitted)


def _reuse(ldm: LDM, job: TrackJob, reader: VideoReader, progress: Progress | None,
           checkpoint: str | os.PathLike | None) -> tuple[Embeddings, list[str]]:
    """The job's embeddings with `job.reuse`'s kept (`refit_changed`), and the ids fitted again; beside a checkpoint
    they are kept, so that a resumed run fits nothing again."""
    assert job.reuse is not None and job.queries is not None  # prepare_track: reuse comes with labels
    kept = None if checkpoint is None else resume.embeddings_path(checkpoint)
    if kept is not None and kept.is_file():
        done = Embeddings.load(kept)
        if done.labels is not None and done.labels.ids == job.queries.ids and all(
                np.array_equal(a, b) for a, b in zip(done.labels.labels, job.queries.labels, strict=True)):
            return done, [str(i) for i in done.extra.get("refitted", [])]
    embeddings, plan = refit_changed(ldm, reader, job.queries, job.reuse, progress=progress)
    if kept is not None:
        embeddings.save(kept)
    return embeddings, plan.refit_ids


def _write_outputs(job: TrackJob, reader: VideoReader, tracked: _Tracked, warnings: list[str],
                   progress: Progress | None) -> None:
    """The annotated video, the tracks, the embeddings (when fitted here) and the key frames, into ``job.out``."""
    out, options, tracks, heat = job.out, job.options, tracked.tracks, tracked.heat
    if options.video_out:
        rows = tracks.frame_indices
        rendered = render_video(reader, tracks, out / ANNOTATED_VIDEO, RenderStyle(trail=options.trail),
                                heatmaps=(lambda row: heat.get(int(rows[row]))) if heat else None,
                                progress=(lambda done, total: progress("render", done, total))
                                if progress is not None else None)
        out.add(rendered.path)
        if rendered.warning:
            warnings.append(rendered.warning)
    for path in tracks.save_all(out.path).values():
        out.add(path)
    if job.queries is not None:
        out.add(tracked.embeddings.save(out / EMBEDDINGS))
    if options.keyframes:
        out.add(write_track_visuals(out.path, reader, tracks, tracked.key_frames, tracked.key_maps,
                                    view=ViewOptions(trail=options.trail, global_search=job.global_search),
                                    progress=progress))


def track_to_folder(ldm: LDM, video: str | os.PathLike, out: str | os.PathLike | None = None, *,
                    progress: Progress | None = None, **options: Any) -> TrackResult:
    """:func:`prepare_track` then :func:`run_track`: track `video` and write every output into `out`.

    `options` are those of :func:`prepare_track` (``queries``, ``embeddings``, ``preset``, ``overrides``,
    ``overwrite``) and the fields of :class:`TrackOptions` (``start``, ``stride``, ``keyframes``, ...).
    """
    track_options, rest = TrackOptions.split(options)
    return run_track(ldm, prepare_track(video, out, options=track_options, **rest), progress=progress)
