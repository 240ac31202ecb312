"""Tracks in other tools' formats (``vidcorr export``): SLEAP, NWB, DeepLabCut, TAP-Vid, CoTracker, and a
DeepLabCut labelled-data folder (training data).

The points become the nodes of one skeleton named ``point_0, point_1, ...`` (or ``tracks.meta["point_names"]``,
or the names given), tracked as one instance.

Frame numbers and times are the video's. Tracks may skip frames (``--start``, ``--stride``): a row is video frame
``tracks.frame_indices[row]``, at ``frame / fps`` seconds. Every export keeps those numbers, in the way its
readers take them:

- SLEAP ``.slp``: each labelled frame carries its video frame index.
- NWB and DeepLabCut CSV: readers such as ``movement`` number rows from 0 and time them ``row / fps``, and
  sleap-io numbers NWB rows by the rank of their timestamps. So these files hold one row per video frame from
  frame 0 to the last tracked frame: the frames that were not tracked hold NaN.
- TAP-Vid and CoTracker arrays: ``frame_indices`` (T,) and ``fps`` beside the arrays of the tracked rows.

Pixel conventions differ, and each file is written in its own:

- SLEAP ``.slp`` and NWB: the centre of the top-left pixel is (0, 0) (sleap-io's SLP format >= 1.1 and
  its NWB ``reference_frame``), so x, y are vidcorr's minus 0.5. DeepLabCut too: its coordinates are
  pixel indices (the centre of pixel 0 is 0), so x, y are vidcorr's minus 0.5.
- TAP-Vid: fractions of the width and height, ``x / W``, ``y / H``, with (0, 0) the top-left corner of the
  frame: vidcorr's convention scaled, as `vidcorr.eval.tapvid` reads TAP-Vid (``fraction * [W, H]``).
- CoTracker: pixels on the scale TAP-Vid's fractions times (W, H) give, which is how CoTracker's own TAP-Vid
  evaluation compares its predictions: vidcorr's numbers unchanged.

Labels are the positions a person gave: each point's query ``(t, x, y)``, or every label of ``tracks.labels``
where the tracks carry them (points with several labels, corrections made in review). A label with a NaN
position says the point is not visible on that frame.

Formats:

- ``slp`` (sleap-io): as SLEAP's own files after inference and labelling. Each tracked frame holds a
  ``PredictedInstance``: ``confidence`` as each point's score and its mean as the instance's score; a point
  that is not visible keeps its tracked x, y with SLEAP's ``visible`` flag off (sleap-io shows it as NaN). Each
  labelled frame also holds a user ``Instance`` (in the same track, linked to the frame's prediction): the
  labels on that frame, and for the other points their tracked position where visible (what the person saw
  and left as it was), else not visible. SLEAP trains on the user instances; ``movement`` and
  ``Labels.numpy()`` take the user instance over the prediction on the same frame.
- ``nwb`` (pynwb + ndx-pose, in ndx-pose's own convention): a ``behavior`` processing module holding the
  ``Skeletons`` and a ``PoseEstimation`` named ``PoseEstimation`` (what ``movement`` and DLC2NWB read) with one
  ``PoseEstimationSeries`` per point: x, y on every tracked frame, visible or not (as DeepLabCut's files;
  ``confidence`` says how sure, and a point was visible where it is at least the visibility threshold), NaN on
  frames not tracked, timestamps ``frame / fps`` in seconds; source software ``vidcorr`` and its version.
  sleap-io reads pose estimates only from modules named ``SLEAP_VIDEO_<k>_<video>``, so the file also has one,
  holding the same series (their timestamps link to the first ones'). Written here rather than by
  ``sleap_io.save_nwb``, which stores the frame rate truncated to an integer (29.97 fps becomes 29).
- ``dlc``: DeepLabCut's analysis CSV (what ``analyze_videos(..., save_as_csv=True)`` writes): header rows
  ``scorer``, ``bodyparts``, ``coords`` (``x, y, likelihood`` per point), then one row per video frame, indexed
  by it; ``likelihood`` is the confidence. Like DeepLabCut's own files it has x, y on every tracked frame: the
  likelihood says how sure the point is. Frames not tracked hold ``NaN`` (written as such: pandas would read a
  row of empty cells under the header as the index's name).
- ``dlc-project``: DeepLabCut's labelled data, for training: ``labeled-data/<video>/img<NNN>.png`` (the frame
  number zero-padded to the digits of the video's frame count, as ``deeplabcut.extract_frames`` names them) and
  ``CollectedData_<scorer>.csv`` / ``.h5`` (key ``df_with_missing``) there, whose columns are the MultiIndex
  ``scorer / bodyparts / coords`` (``x``, ``y``) and whose rows are indexed by the image's path relative to the
  project, ``labeled-data/<video>/img<NNN>.png`` (DeepLabCut turns such paths into its row MultiIndex when it
  reads them). The frames are every labelled frame (its values as for the SLEAP user instance above, NaN where
  not visible), plus up to ``tracked_frames`` tracked frames chosen by `training_frames`.
- ``tapvid``: ``points`` float32 (N, T, 2) in [0, 1], ``occluded`` bool (N, T) (= not visible), plus
  ``frame_indices`` (T,), ``fps`` and ``size`` (W, H): one TAP-Vid example without its ``video``. ``.npz``, or a
  pickle of the dict of numpy arrays (``.pkl``) as TAP-Vid's own files are.
- ``cotracker``: ``pred_tracks`` float32 (1, T, N, 2), ``pred_visibility`` bool (1, T, N), ``queries``
  float32 (1, N, 3) t, x, y, as ``CoTrackerPredictor`` returns and takes them, plus ``frame_indices``
  (T,) and ``fps``; ``.npz`` (no torch needed to read it).

Every output is staged (`vidcorr.io.staging`): it appears whole or not at all, an existing one is replaced only
when asked, and an export never writes over the tracks file it reads.
"""

from __future__ import annotations

import datetime
import math
import os
import pickle
import re
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr._version import __version__
from vidcorr.errors import InputError
from vidcorr.io.images import write_image
from vidcorr.io.reader import VideoReader
from vidcorr.io.staging import check_not_input, check_output, staged_file, staged_folder
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video

FORMATS = ("slp", "nwb", "dlc", "dlc-project", "tapvid", "cotracker")
SUFFIXES = {"slp": (".slp",), "nwb": (".nwb",), "dlc": (".csv",), "tapvid": (".npz", ".pkl"),
            "cotracker": (".npz",)}
"""The file suffixes each file format writes (``dlc-project`` writes a folder)."""
DEFAULT_NAMES = {"slp": "{stem}.slp", "nwb": "{stem}.nwb", "dlc": "{stem}_dlc.csv", "dlc-project": "{stem}_dlc_project",
                 "tapvid": "{stem}_tapvid.npz", "cotracker": "{stem}_cotracker.npz"}
NEEDS_SLEAP_IO = ("slp", "nwb")
TRACKS_FILE = "tracks.npz"
SKELETON_NAME = "vidcorr"
TRACK_NAME = "vidcorr"
DLC_SCORER = "vidcorr"
NWB_MODULE = "behavior"
NWB_POSE_ESTIMATION = "PoseEstimation"
DEFAULT_TRAINING_FRAMES = 20
"""Tracked frames a DeepLabCut project gets besides the labelled ones (DeepLabCut's own numframes2pick)."""
DEFAULT_MIN_CONFIDENCE = 0.5
"""A tracked frame is training data only where every point's confidence is at least this."""
CENTRE_AT_ZERO = 0.5
"""vidcorr's x, y minus this are the coordinates of tools whose top-left pixel's centre is (0, 0)."""
REFERENCE_FRAME = ("(x, y) in pixels from the top-left of the video frame; the centre of the top-left pixel is "
                   "(0, 0), its top-left corner (-0.5, -0.5)")


def check_format(fmt: str) -> str:
    """`fmt` lower-cased if it is one of FORMATS, else InputError."""
    name = str(fmt).lower()
    if name not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return name


def tracks_file(source: str | os.PathLike) -> Path:
    """The tracks file to export: `source` itself, or the ``tracks.npz`` of a track output folder.

    Raises:
        InputError: a folder without a tracks.npz.
    """
    path = Path(source)
    if path.is_dir():
        if not (path / TRACKS_FILE).is_file():
            raise InputError(f"folder {str(path)!r} holds no {TRACKS_FILE}: give a track output folder or its "
                             f"{TRACKS_FILE}")
        return path / TRACKS_FILE
    return path


def default_output(tracks_path: str | os.PathLike, fmt: str) -> Path:
    """Where `export` writes by default: next to the tracks file (``tracks.slp``, ``tracks_dlc.csv``, ...)."""
    path = tracks_file(tracks_path)
    return path.with_name(DEFAULT_NAMES[check_format(fmt)].format(stem=path.stem))


def point_names(tracks: Tracks, names: Sequence[str] | None = None) -> list[str]:
    """The skeleton's node names: `names`, else ``tracks.meta["point_names"]``, else ``point_0 ...``.

    Raises:
        InputError: not one non-empty, distinct name per point.
    """
    given = names if names is not None else tracks.meta.get("point_names")
    if given is None:
        return [f"point_{i}" for i in range(tracks.num_points)]
    if isinstance(given, str) or not isinstance(given, Sequence):
        raise InputError(f"point names must be a list of strings, got {type(given).__name__}")
    result = [str(n).strip() for n in given]
    if len(result) != tracks.num_points:
        raise InputError(f"{len(result)} point names for {tracks.num_points} points")
    if any(not n for n in result) or len(set(result)) != len(result):
        raise InputError(f"point names must be non-empty and distinct, got {result}")
    if any(re.search(r"[,\"\r\n]", n) for n in result):
        raise InputError("point names cannot hold commas, quotes or line breaks (they become CSV header cells)")
    return result


# ------------------------------------------------------------------------------- frames, labels, training


def video_rows(tracks: Tracks) -> np.ndarray:
    """int64 (F,): for each video frame 0 .. the last tracked frame, its tracks row, or -1 where not tracked."""
    count = int(tracks.frame_indices[-1]) + 1 if tracks.num_frames else 0
    rows = np.full(count, -1, dtype=np.int64)
    rows[tracks.frame_indices] = np.arange(tracks.num_frames)
    return rows


def point_labels(tracks: Tracks) -> list[np.ndarray]:
    """Each point's labels as float64 (K_i, 3) rows ``t, x, y`` (vidcorr's pixels; NaN x, y: not visible there).

    ``tracks.labels`` where the tracks carry labels (a `vidcorr.io.points.PointLabels`, or one (K, 3) array per
    point), else each point's query.

    Raises:
        InputError: not one set of labels per point, or a label's frame is not a frame number.
    """
    labels = getattr(tracks, "labels", None)
    if labels is None:
        per_point = [row[None, :] for row in tracks.queries.astype(np.float64)]
    else:
        per_point = [np.asarray(rows, dtype=np.float64).reshape(-1, 3)
                     for rows in getattr(labels, "labels", labels)]
    if len(per_point) != tracks.num_points:
        raise InputError(f"the tracks have labels for {len(per_point)} points but track {tracks.num_points}")
    for point, rows in enumerate(per_point):
        frames = rows[:, 0]
        if not np.all(np.isfinite(frames) & (frames >= 0) & (frames == np.round(frames))):
            raise InputError(f"point {point} has a label on frame {frames.tolist()}: frames are integers >= 0")
    return per_point


def labelled_frames(tracks: Tracks) -> dict[int, np.ndarray]:
    """Each labelled video frame -> float64 (N, 2) x, y in vidcorr's pixels: the labels there, and for the other
    points their tracked position where the frame was tracked and the point visible, else NaN.

    The other points' tracked positions stand because the person saw them there and left them (a label on a
    frame is made on a frame that shows every point).
    """
    rows = video_rows(tracks)
    labels = point_labels(tracks)
    poses: dict[int, np.ndarray] = {}
    for frame in sorted({int(t) for rows_t in labels for t in rows_t[:, 0]}):
        pose = np.full((tracks.num_points, 2), np.nan)
        row = rows[frame] if frame < len(rows) else -1
        if row >= 0:
            seen = tracks.visible[row]
            pose[seen] = tracks.points[row][seen]
        poses[frame] = pose
    for point, point_rows in enumerate(labels):
        for t, x, y in point_rows.tolist():
            poses[int(t)][point] = (x, y)
    return poses


def training_frames(tracks: Tracks, count: int, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                    exclude: Sequence[int] = ()) -> list[int]:
    """Up to `count` tracked frames to train on, spread over the tracked part of the video.

    The rule: a frame qualifies when every point is visible with a confidence of at least `min_confidence`, and
    it is not in `exclude` (the labelled frames, exported anyway). The frames from the first to the last
    tracked one are cut into `count` equal spans (span k holds frames ``first + k * L / count`` up to the next
    span's start, L = last - first + 1); each span gives its qualifying frame whose lowest point confidence is
    the highest (the earliest of equals). A span with no qualifying frame gives none, so fewer than `count`
    frames can come back.

    Returns:
        Video frame numbers, increasing.
    """
    if count < 0:
        raise InputError(f"--frames {count} is invalid: it must be >= 0")
    if not 0.0 <= min_confidence <= 1.0 or math.isnan(min_confidence):
        raise InputError(f"--min-confidence {min_confidence} is invalid: it must be in [0, 1]")
    if count == 0 or tracks.num_frames == 0:
        return []
    lowest = np.where(tracks.visible, tracks.confidence, -np.inf).min(axis=1) if tracks.num_points else \
        np.full(tracks.num_frames, np.inf)
    qualifies = (lowest >= min_confidence) & ~np.isin(tracks.frame_indices, np.asarray(exclude, dtype=np.int64))
    first, last = int(tracks.frame_indices[0]), int(tracks.frame_indices[-1])
    span = (tracks.frame_indices - first) * count // (last - first + 1)
    chosen = []
    for k in range(count):
        rows = np.flatnonzero(qualifies & (span == k))
        if len(rows):
            chosen.append(int(tracks.frame_indices[rows[np.argmax(lowest[rows])]]))
    return chosen


# ------------------------------------------------------------------------------------------- the layouts


def tapvid_arrays(tracks: Tracks) -> dict[str, np.ndarray]:
    """The TAP-Vid layout: ``points`` float32 (N, T, 2) = x / W, y / H; ``occluded`` bool (N, T) = not
    visible; ``frame_indices`` int64 (T,); ``fps`` float64 (); ``size`` int64 (2,) W, H."""
    width, height = tracks.size
    fractions = tracks.points.astype(np.float64) / np.array([width, height], dtype=np.float64)
    return {"points": np.ascontiguousarray(fractions.transpose(1, 0, 2), dtype=np.float32),
            "occluded": np.ascontiguousarray(~tracks.visible.T),
            "frame_indices": tracks.frame_indices.copy(), "fps": np.asarray(tracks.fps, dtype=np.float64),
            "size": np.asarray(tracks.size, dtype=np.int64)}


def cotracker_arrays(tracks: Tracks) -> dict[str, np.ndarray]:
    """The CoTracker layout: ``pred_tracks`` float32 (1, T, N, 2) pixels, ``pred_visibility`` bool (1, T, N),
    ``queries`` float32 (1, N, 3) t, x, y, ``frame_indices`` int64 (T,), ``fps`` float64 ()."""
    return {"pred_tracks": tracks.points[None].astype(np.float32), "pred_visibility": tracks.visible[None].copy(),
            "queries": tracks.queries[None].astype(np.float32), "frame_indices": tracks.frame_indices.copy(),
            "fps": np.asarray(tracks.fps, dtype=np.float64)}


def dlc_csv_text(tracks: Tracks, names: Sequence[str] | None = None, scorer: str = DLC_SCORER) -> str:
    """DeepLabCut's analysis CSV (see the module docstring) as text: one row per video frame 0 .. last tracked."""
    names = point_names(tracks, names)
    lines = _dlc_header(scorer, names, ("x", "y", "likelihood"))
    # x - 0.5 is exact in float32 for |x| < 2**22; the shortest float32 decimals read back as the same values.
    values = np.concatenate([tracks.points - np.float32(CENTRE_AT_ZERO), tracks.confidence[..., None]], axis=2)
    cells = _float32_text(values.reshape(tracks.num_frames, -1))
    untracked = ",".join(["NaN"] * (3 * len(names)))
    for frame, row in enumerate(video_rows(tracks).tolist()):
        lines.append(f"{frame},{','.join(cells[row]) if row >= 0 else untracked}")
    return "\n".join(lines) + "\n"


def _dlc_header(scorer: str, names: Sequence[str], coords: Sequence[str]) -> list[str]:
    if re.search(r"[,\"\r\n]", scorer) or not scorer.strip():
        raise InputError(f"scorer {scorer!r} is invalid: give a non-empty name without commas, quotes or line breaks")
    return [",".join(["scorer"] + [scorer] * (len(coords) * len(names))),
            ",".join(["bodyparts"] + [n for n in names for _ in coords]),
            ",".join(["coords", *(list(coords) * len(names))])]


def _float32_text(values: np.ndarray) -> np.ndarray:
    """float32 -> the shortest decimals that read back as the same float32; non-finite as ``NaN``."""
    values = np.asarray(values, dtype=np.float32)
    text = values.astype(str).astype(object)
    text[~np.isfinite(values)] = "NaN"
    return text


def hidden_as_nan(tracks: Tracks) -> np.ndarray:
    """float64 (T, N, 2) x, y with the top-left pixel's centre at (0, 0), NaN where not visible."""
    xy = tracks.points.astype(np.float64) - CENTRE_AT_ZERO
    xy[~tracks.visible] = np.nan
    return xy


# --------------------------------------------------------------------------------------- sleap-io formats


def _sleap_io() -> Any:
    try:
        # optional dependency (the pose extra): imported when a SLEAP or NWB export is asked for
        import sleap_io
    except ImportError:
        raise InputError('exporting to SLEAP or NWB needs sleap-io: pip install "vidcorr[pose]"') from None
    return sleap_io


def sleap_labels(tracks: Tracks, names: Sequence[str] | None = None) -> Any:
    """A ``sleap_io.Labels`` of the tracks and their labels (see the module docstring for what is in it)."""
    sio = _sleap_io()
    names = point_names(tracks, names)
    width, height = tracks.size
    labelled = labelled_frames(tracks)
    rows = video_rows(tracks)
    num_video_frames = max(len(rows), max(labelled, default=-1) + 1)
    video = sio.Video(filename=_video_name(tracks), backend=None, open_backend=False,
                      backend_metadata={"shape": (num_video_frames, height, width, 3)})
    skeleton = sio.Skeleton(nodes=names, name=SKELETON_NAME)
    track = sio.Track(name=TRACK_NAME)
    xy = tracks.points.astype(np.float64) - CENTRE_AT_ZERO
    frames = []
    for frame in sorted(set(tracks.frame_indices.tolist()) | set(labelled)):
        instances = []
        row = int(rows[frame]) if frame < len(rows) else -1
        if row >= 0:
            scores = tracks.confidence[row].astype(np.float64)
            predicted = sio.PredictedInstance.from_numpy(points_data=xy[row], point_scores=scores,
                                                         score=float(scores.mean()), skeleton=skeleton, track=track)
            predicted.points["visible"] = tracks.visible[row]  # hidden points keep their tracked x, y
            instances.append(predicted)
        if frame in labelled:
            user = sio.Instance.from_numpy(labelled[frame] - CENTRE_AT_ZERO, skeleton=skeleton, track=track)
            user.from_predicted = instances[0] if instances else None
            instances.append(user)
        frames.append(sio.LabeledFrame(video=video, frame_idx=frame, instances=instances))
    return sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=[track])


def write_slp(tracks: Tracks, path: str | os.PathLike, names: Sequence[str] | None = None, *,
              overwrite: bool = False) -> Path:
    """Write a SLEAP ``.slp`` through sleap-io (staged; refuses an existing file unless `overwrite`)."""
    sio = _sleap_io()
    labels = sleap_labels(tracks, names)
    with staged_file(path, overwrite=overwrite, overwrite_hint=_HINT) as tmp:
        sio.save_slp(labels, str(tmp), embed=False, verbose=False)
    return Path(path)


def write_nwb(tracks: Tracks, path: str | os.PathLike, names: Sequence[str] | None = None, *,
              overwrite: bool = False) -> Path:
    """Write an NWB file with ndx-pose in its own convention (see the module docstring; staged)."""
    _sleap_io()  # the extra that brings pynwb and ndx-pose
    try:
        # optional dependencies (the pose extra): imported when an NWB export is asked for
        from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
        from pynwb import NWBHDF5IO, NWBFile
    except ImportError:
        raise InputError('exporting to NWB needs pynwb and ndx-pose: pip install "vidcorr[pose]"') from None
    names = point_names(tracks, names)
    video = _video_name(tracks)
    width, height = tracks.size
    nwb = NWBFile(session_description=f"vidcorr tracks of {video}", identifier=str(uuid.uuid4()),
                  session_start_time=datetime.datetime.now(datetime.timezone.utc))
    skeleton = Skeleton(name=SKELETON_NAME, nodes=names, edges=np.zeros((0, 2), dtype="uint8"))
    behavior = nwb.create_processing_module(name=NWB_MODULE, description="processed behavioral data")
    behavior.add(Skeletons(skeletons=[skeleton]))
    device = nwb.create_device(name="camera_0", description=f"camera of {Path(video).name}")
    rows = video_rows(tracks)
    tracked = rows >= 0
    timestamps = np.arange(len(rows), dtype=np.float64) / tracks.fps
    xy = np.full((len(rows), tracks.num_points, 2), np.nan)
    xy[tracked] = tracks.points[rows[tracked]].astype(np.float64) - CENTRE_AT_ZERO
    confidence = np.full((len(rows), tracks.num_points), np.nan)
    confidence[tracked] = tracks.confidence[rows[tracked]]
    threshold = tracks.meta.get("visibility_threshold")
    definition = ("vidcorr confidence in [0, 1]: the attention the point's embedding gives the located pixel, "
                  "relative to its reference frame" + (f"; visible where >= {threshold}" if threshold is not None
                                                       else ""))
    series = [PoseEstimationSeries(name=name, description=f"vidcorr track of {name}", data=xy[:, k],
                                   unit="pixels", reference_frame=REFERENCE_FRAME, timestamps=timestamps,
                                   confidence=confidence[:, k], confidence_definition=definition)
              for k, name in enumerate(names)]
    # sleap-io's reader looks in modules named SLEAP_VIDEO_*: the same series there (timestamps linked).
    linked = [PoseEstimationSeries(name=s.name, description=s.description, data=xy[:, k], unit="pixels",
                                   reference_frame=REFERENCE_FRAME, timestamps=s, confidence=confidence[:, k],
                                   confidence_definition=definition)
              for k, s in enumerate(series)]
    common = {"description": f"points tracked by vidcorr in {Path(video).name}", "original_videos": [video],
              "labeled_videos": [video], "dimensions": np.array([[height, width]], dtype="uint16"),
              "devices": [device], "scorer": str(tracks.meta.get("model", "vidcorr")),
              "source_software": "vidcorr", "source_software_version": __version__, "skeleton": skeleton}
    with warnings.catch_warnings():
        # ndx-pose >= 0.2 deprecates original_videos, labeled_videos, dimensions and devices for ImageSeries
        # links; sleap-io's reader reads original_videos, so they stay.
        warnings.simplefilter("ignore", DeprecationWarning)
        behavior.add(PoseEstimation(name=NWB_POSE_ESTIMATION, pose_estimation_series=series, **common))
        sleap_copy = PoseEstimation(name=f"track={TRACK_NAME}", pose_estimation_series=linked, **common)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(video).stem) or "video"
    nwb.create_processing_module(name=f"SLEAP_VIDEO_000_{stem}", description="vidcorr tracks, for sleap-io's "
                                 f"reader (a copy of {NWB_MODULE}/{NWB_POSE_ESTIMATION})").add(sleap_copy)
    with staged_file(path, overwrite=overwrite, overwrite_hint=_HINT) as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwb)
    return Path(path)


def _video_name(tracks: Tracks) -> str:
    return str(tracks.meta.get("video") or "video")


# ------------------------------------------------------------------------------------ DeepLabCut project


@dataclass(frozen=True)
class DlcProject:
    """What `write_dlc_project` wrote.

    Attributes:
        folder: ``<project>/labeled-data/<video>``.
        images: the PNGs written, in frame order.
        labelled: the labelled frames among them.
        tracked: the tracked frames chosen by `training_frames`.
    """

    folder: Path
    images: tuple[Path, ...]
    labelled: tuple[int, ...]
    tracked: tuple[int, ...]


def dlc_image_name(frame: int, num_video_frames: int) -> str:
    """``img<frame>.png``, zero-padded as ``deeplabcut.extract_frames`` pads: to ceil(log10(frame count)) digits."""
    digits = int(np.ceil(np.log10(num_video_frames))) if num_video_frames > 1 else 0
    return f"img{str(frame).zfill(digits)}.png"


def dlc_collected_data(poses: dict[int, np.ndarray], names: Sequence[str], scorer: str, video_stem: str,
                       num_video_frames: int) -> Any:
    """The CollectedData DataFrame: rows ``labeled-data/<video>/img<NNN>.png``, columns scorer/bodyparts/coords,
    values vidcorr's x, y minus 0.5 (NaN: not labelled or not visible)."""
    try:
        # optional dependency (the pose extra): imported when a DeepLabCut project is written
        import pandas as pd
    except ImportError:
        raise InputError('exporting a DeepLabCut project needs pandas and PyTables: pip install "vidcorr[pose]"') \
            from None
    _dlc_header(scorer, names, ("x", "y"))  # checks the scorer's name
    columns = pd.MultiIndex.from_product([[scorer], list(names), ["x", "y"]], names=["scorer", "bodyparts", "coords"])
    index = [f"labeled-data/{video_stem}/{dlc_image_name(frame, num_video_frames)}" for frame in poses]
    values = np.stack([pose - CENTRE_AT_ZERO for pose in poses.values()]).reshape(len(poses), -1) if poses else \
        np.zeros((0, 2 * len(names)))
    return pd.DataFrame(values, index=index, columns=columns)


@dataclass(frozen=True)
class DlcOptions:
    """DeepLabCut's options of an export: one object for `export_tracks`, `write_dlc_project` and the CLI.

    Attributes:
        scorer: the scorer's name (``dlc``, ``dlc-project``; DeepLabCut uses only the data of its config's
            ``scorer``).
        tracked_frames: ``dlc-project``: how many tracked frames to add to the labelled ones (`training_frames`).
        min_confidence: ``dlc-project``: the confidence every point needs on such a frame.
    """

    scorer: str = DLC_SCORER
    tracked_frames: int = DEFAULT_TRAINING_FRAMES
    min_confidence: float = DEFAULT_MIN_CONFIDENCE


def write_dlc_project(tracks: Tracks, project: str | os.PathLike, video: VideoReader | str | os.PathLike,
                      names: Sequence[str] | None = None, *, options: DlcOptions | None = None,
                      overwrite: bool = False, inputs: Sequence[str | os.PathLike] = ()) -> DlcProject:
    """Write DeepLabCut labelled data for the tracks into `project` (see the module docstring).

    Args:
        tracks: the tracks (and their labels).
        project: the DeepLabCut project folder (created if missing; an existing project is added to).
        video: the video the tracks were made on (its frames become the images); its file or folder name's stem
            names ``labeled-data/<video>``.
        names: the bodyparts (default as `point_names`).
        options: the scorer, the tracked frames to add and their minimum confidence (`DlcOptions`; None: its
            defaults).
        overwrite: replace an existing ``labeled-data/<video>`` that holds ``CollectedData_<scorer>``.
        inputs: files the export reads, which it must never replace (the tracks file).

    Raises:
        InputError: the video is missing or of another size or too short, the folder exists (without
            `overwrite`) or would swallow an input, bad names, scorer or counts, pandas or PyTables missing.
    """
    options = options or DlcOptions()
    scorer = options.scorer
    names = point_names(tracks, names)
    reader = open_video(video)
    try:
        stem = Path(reader.name).stem
        folder = Path(project) / "labeled-data" / stem
        replaceable = frozenset({f"CollectedData_{scorer}.h5", f"CollectedData_{scorer}.csv"})
        check_output(folder, folder=True, overwrite=overwrite, overwrite_hint=_HINT, replaceable=replaceable)
        _refuse_inputs_inside(folder, [*inputs, *([] if isinstance(video, VideoReader) else [video])])
        if reader.info.size != tracks.size:
            raise InputError(f"tracks are for a {tracks.size[0]}x{tracks.size[1]} video but {reader.name!r} is "
                             f"{reader.info.width}x{reader.info.height}")
        labelled = labelled_frames(tracks)
        tracked = training_frames(tracks, options.tracked_frames, options.min_confidence, exclude=list(labelled))
        rows = video_rows(tracks)
        poses = dict(labelled)
        for frame in tracked:
            poses[frame] = tracks.points[rows[frame]].astype(np.float64)
        poses = dict(sorted(poses.items()))
        num_video_frames = reader.info.num_frames
        if poses and max(poses) >= num_video_frames:
            raise InputError(f"the tracks label frame {max(poses)} but {reader.name!r} has {num_video_frames} frames")
        data = dlc_collected_data(poses, names, scorer, stem, num_video_frames)
        with staged_folder(folder, overwrite=overwrite, overwrite_hint=_HINT, replaceable=replaceable) as staged:
            for frame in poses:
                write_image(staged.path / dlc_image_name(frame, num_video_frames), reader.get_frame(frame))
            data.to_csv(staged.path / f"CollectedData_{scorer}.csv")
            try:
                data.to_hdf(staged.path / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w")
            except ImportError:
                raise InputError('exporting a DeepLabCut project needs PyTables: pip install "vidcorr[pose]"') \
                    from None
    finally:
        if reader is not video:
            reader.close()
    return DlcProject(folder=folder, images=tuple(folder / dlc_image_name(f, num_video_frames) for f in poses),
                      labelled=tuple(labelled), tracked=tuple(tracked))


def _refuse_inputs_inside(folder: Path, inputs: Sequence[str | os.PathLike]) -> None:
    target = folder.resolve()
    for path in inputs:
        resolved = Path(path).resolve()
        if resolved == target or target in resolved.parents:
            raise InputError(f"output folder {str(folder)!r} holds {str(path)!r}, an input of this export: choose "
                             "another folder")


# ------------------------------------------------------------------------------------------------- export

_HINT = "--overwrite"


def export_tracks(tracks: Tracks | str | os.PathLike, fmt: str, out: str | os.PathLike | None = None,
                  names: Sequence[str] | None = None, *, overwrite: bool = False,
                  video: VideoReader | str | os.PathLike | None = None, dlc: DlcOptions | None = None) -> Path:
    """Write `tracks` (a Tracks, a tracks .npz or a track output folder) in format `fmt` to `out`.

    Args:
        tracks: what to export.
        fmt: one of FORMATS.
        out: the output file (``dlc-project``: the project folder); default `default_output` (tracks from a file).
        names: point names (`point_names`).
        overwrite: replace an existing output (never the tracks file itself).
        video: ``dlc-project``: the video the tracks were made on (default: the one they record).
        dlc: DeepLabCut's scorer (``dlc``, ``dlc-project``), and the tracked frames to add to the labelled ones
            and their minimum confidence (``dlc-project``) (`DlcOptions`; None: its defaults).

    Returns:
        The written file's path (``dlc-project``: the ``labeled-data/<video>`` folder).

    Raises:
        InputError: unknown format, unreadable tracks, a suffix the format does not write, an output that exists
            (without `overwrite`), is the tracks file, is a folder or cannot be written, sleap-io missing for
            slp/nwb, bad names, a missing video (``dlc-project``).
    """
    dlc = dlc or DlcOptions()
    fmt = check_format(fmt)
    source: Path | None = None
    if not isinstance(tracks, Tracks):
        source = tracks_file(tracks)
        if out is None:
            out = default_output(source, fmt)
        tracks = Tracks.load_npz(source)
    elif out is None:
        raise InputError("give the output path when exporting Tracks from memory")
    out = Path(out)
    if fmt == "dlc-project":
        if video is None:
            video = _recorded_video(tracks)
        written = write_dlc_project(tracks, out, video, names, options=dlc, overwrite=overwrite,
                                    inputs=[source] if source is not None else [])
        return written.folder
    if out.suffix.lower() not in SUFFIXES[fmt] or out.is_dir():
        if out.is_dir() and out.suffix.lower() in SUFFIXES[fmt]:
            raise InputError(f"output {str(out)!r} is a folder")
        raise InputError(f"--format {fmt} writes {' or '.join(SUFFIXES[fmt])} files, not {str(out)!r}")
    check_not_input(out, {"the tracks file being exported": source})
    if not out.parent.is_dir():
        raise InputError(f"output folder {str(out.parent)!r} does not exist")
    check_output(out, folder=False, overwrite=overwrite, overwrite_hint=_HINT)
    if fmt in NEEDS_SLEAP_IO:
        _sleap_io()
    names = point_names(tracks, names)
    if fmt == "slp":
        return write_slp(tracks, out, names, overwrite=overwrite)
    if fmt == "nwb":
        return write_nwb(tracks, out, names, overwrite=overwrite)
    with staged_file(out, overwrite=overwrite, overwrite_hint=_HINT) as tmp:
        if fmt == "dlc":
            tmp.write_text(dlc_csv_text(tracks, names, dlc.scorer), encoding="utf-8")
        else:
            arrays = tapvid_arrays(tracks) if fmt == "tapvid" else cotracker_arrays(tracks)
            with open(tmp, "wb") as f:
                if out.suffix.lower() == ".pkl":
                    pickle.dump(arrays, f, protocol=4)
                else:
                    np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy stubs mistype **kwargs
    return out


def _recorded_video(tracks: Tracks) -> Path:
    recorded = tracks.meta.get("video")
    if not recorded:
        raise InputError("the tracks record no video: pass --video, the video they were made on")
    path = Path(str(recorded))
    if not path.exists():
        raise InputError(f"the video the tracks were made on, {str(path)!r}, does not exist here: pass --video")
    return path


__all__ = [
    "FORMATS", "DlcOptions", "DlcProject", "check_format", "cotracker_arrays", "default_output", "dlc_collected_data",
    "dlc_csv_text", "dlc_image_name", "export_tracks", "labelled_frames", "point_labels", "point_names",
    "sleap_labels", "tapvid_arrays", "tracks_file", "training_frames", "video_rows", "write_dlc_project",
    "write_nwb", "write_slp",
]
