"""Tracks in other tools' formats (``vidcorr export``): SLEAP, NWB, DeepLabCut, TAP-Vid, CoTracker.

All exports carry every tracked row (``tracks.frame_indices`` are the video frames) and every point. The
points become the nodes of one skeleton named ``point_0, point_1, ...`` (or ``tracks.meta["point_names"]``,
or the names given), tracked as one instance.

Pixel conventions differ, and each file is written in its own:

- SLEAP ``.slp`` and NWB: the centre of the top-left pixel is (0, 0) (sleap-io's SLP format >= 1.1 and
  its NWB ``reference_frame``), so x, y are vidcorr's minus 0.5. DeepLabCut too: its coordinates are
  pixel indices (the centre of pixel 0 is 0), so x, y are vidcorr's minus 0.5.
- TAP-Vid: fractions of the width and height, ``x / W``, ``y / H``, with (0, 0) the top-left corner of the
  frame: vidcorr's convention scaled, as `vidcorr.eval.tapvid` reads TAP-Vid (``fraction * [W, H]``).
- CoTracker: pixels on the scale TAP-Vid's fractions times (W, H) give, which is how CoTracker's own TAP-Vid
  evaluation compares its predictions: vidcorr's numbers unchanged.

Formats:

- ``slp`` (sleap-io): a ``PredictedInstance`` per tracked frame; x, y NaN where the point is not visible;
  ``confidence`` as each point's score and its mean as the instance's score.
- ``nwb`` (pynwb + ndx-pose, sleap-io's own NWB libraries): one ``PoseEstimation`` with a
  ``PoseEstimationSeries`` per point: x, y NaN where not visible, ``confidence`` the confidence, explicit
  timestamps ``frame / fps`` in seconds. It uses the layout sleap-io writes (the skeleton in the
  ``behavior`` module, the estimates in ``SLEAP_VIDEO_000_<video>``), so ``sleap_io.load_nwb`` reads it. It
  is written here rather than by ``sleap_io.save_nwb``, which stores the frame rate truncated to an integer
  (29.97 fps becomes 29) and fails on tracks that skip frames.
- ``dlc``: DeepLabCut's analysis CSV (what ``analyze_videos(..., save_as_csv=True)`` writes): header rows
  ``scorer``, ``bodyparts``, ``coords`` (``x, y, likelihood`` per point), then one row per frame indexed by
  the video frame; ``likelihood`` is the confidence. Like DeepLabCut's own files it has x, y on every
  frame: the likelihood says how sure the point is.
- ``tapvid``: ``points`` float32 (N, T, 2) in [0, 1], ``occluded`` bool (N, T) (= not visible), plus
  ``frame_indices`` (T,) and ``size`` (W, H): one TAP-Vid example without its ``video``. ``.npz``, or a
  pickle of the dict of numpy arrays (``.pkl``) as TAP-Vid's own files are.
- ``cotracker``: ``pred_tracks`` float32 (1, T, N, 2), ``pred_visibility`` bool (1, T, N), ``queries``
  float32 (1, N, 3) t, x, y, as ``CoTrackerPredictor`` returns and takes them, plus ``frame_indices``
  (T,); ``.npz`` (no torch needed to read it).

Every file is written under a temporary name and renamed into place, so a failure leaves no output.
"""

from __future__ import annotations

import datetime
import os
import pickle
import re
import uuid
import warnings
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.tracks import Tracks

FORMATS = ("slp", "nwb", "dlc", "tapvid", "cotracker")
SUFFIXES = {"slp": (".slp",), "nwb": (".nwb",), "dlc": (".csv",), "tapvid": (".npz", ".pkl"),
            "cotracker": (".npz",)}
DEFAULT_NAMES = {"slp": "{stem}.slp", "nwb": "{stem}.nwb", "dlc": "{stem}_dlc.csv", "tapvid": "{stem}_tapvid.npz",
                 "cotracker": "{stem}_cotracker.npz"}
NEEDS_SLEAP_IO = ("slp", "nwb")
SKELETON_NAME = "vidcorr"
TRACK_NAME = "vidcorr"
DLC_SCORER = "vidcorr"
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


def default_output(tracks_path: str | os.PathLike, fmt: str) -> Path:
    """Where `export` writes by default: next to the tracks file (``tracks.slp``, ``tracks_dlc.csv``, ...)."""
    path = Path(tracks_path)
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


# ------------------------------------------------------------------------------------------- the layouts


def tapvid_arrays(tracks: Tracks) -> dict[str, np.ndarray]:
    """The TAP-Vid layout: ``points`` float32 (N, T, 2) = x / W, y / H; ``occluded`` bool (N, T) = not
    visible; ``frame_indices`` int64 (T,); ``size`` int64 (2,) W, H."""
    width, height = tracks.size
    fractions = tracks.points.astype(np.float64) / np.array([width, height], dtype=np.float64)
    return {"points": np.ascontiguousarray(fractions.transpose(1, 0, 2), dtype=np.float32),
            "occluded": np.ascontiguousarray(~tracks.visible.T),
            "frame_indices": tracks.frame_indices.copy(), "size": np.asarray(tracks.size, dtype=np.int64)}


def cotracker_arrays(tracks: Tracks) -> dict[str, np.ndarray]:
    """The CoTracker layout: ``pred_tracks`` float32 (1, T, N, 2) pixels, ``pred_visibility`` bool (1, T, N),
    ``queries`` float32 (1, N, 3) t, x, y, ``frame_indices`` int64 (T,)."""
    return {"pred_tracks": tracks.points[None].astype(np.float32), "pred_visibility": tracks.visible[None].copy(),
            "queries": tracks.queries[None].astype(np.float32), "frame_indices": tracks.frame_indices.copy()}


def dlc_csv_text(tracks: Tracks, names: Sequence[str] | None = None, scorer: str = DLC_SCORER) -> str:
    """DeepLabCut's analysis CSV (see the module docstring) as text."""
    names = point_names(tracks, names)
    lines = [",".join(["scorer"] + [scorer] * (3 * len(names))),
             ",".join(["bodyparts"] + [n for n in names for _ in range(3)]),
             ",".join(["coords"] + ["x", "y", "likelihood"] * len(names))]
    # x - 0.5 is exact in float32 for |x| < 2**22; the shortest float32 decimals read back as the same values.
    values = np.concatenate([tracks.points - np.float32(CENTRE_AT_ZERO), tracks.confidence[..., None]], axis=2)
    cells = _float32_text(values.reshape(tracks.num_frames, -1))
    for frame, row in zip(tracks.frame_indices.tolist(), cells, strict=True):
        lines.append(",".join([str(frame), *row]))
    return "\n".join(lines) + "\n"


def _float32_text(values: np.ndarray) -> np.ndarray:
    """float32 -> the shortest decimals that read back as the same float32; non-finite as empty cells (NaN)."""
    values = np.asarray(values, dtype=np.float32)
    text = values.astype(str).astype(object)
    text[~np.isfinite(values)] = ""
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
    """A ``sleap_io.Labels`` of the tracks (see the module docstring for what is in it)."""
    sio = _sleap_io()
    names = point_names(tracks, names)
    width, height = tracks.size
    num_video_frames = int(tracks.frame_indices[-1]) + 1 if tracks.num_frames else 0
    video = sio.Video(filename=_video_name(tracks), backend=None, open_backend=False,
                      backend_metadata={"shape": (num_video_frames, height, width, 3)})
    skeleton = sio.Skeleton(nodes=names, name=SKELETON_NAME)
    track = sio.Track(name=TRACK_NAME)
    xy = hidden_as_nan(tracks)
    frames = []
    for row, frame in enumerate(tracks.frame_indices.tolist()):
        scores = tracks.confidence[row].astype(np.float64)
        instance = sio.PredictedInstance.from_numpy(points_data=xy[row], point_scores=scores,
                                                    score=float(scores.mean()), skeleton=skeleton, track=track)
        frames.append(sio.LabeledFrame(video=video, frame_idx=int(frame), instances=[instance]))
    return sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=[track])


def write_slp(tracks: Tracks, path: str | os.PathLike, names: Sequence[str] | None = None) -> Path:
    """Write a SLEAP ``.slp`` through sleap-io (atomically); returns the path."""
    sio = _sleap_io()
    labels = sleap_labels(tracks, names)
    path = Path(path)
    with atomic_path(path) as tmp:
        sio.save_slp(labels, str(tmp), embed=False, verbose=False)
    return path


def write_nwb(tracks: Tracks, path: str | os.PathLike, names: Sequence[str] | None = None) -> Path:
    """Write an NWB file with ndx-pose (atomically; see the module docstring); returns the path."""
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
    nwb.create_processing_module(name="behavior", description="processed behavioral data").add(
        Skeletons(skeletons=[skeleton]))
    device = nwb.create_device(name="camera_0", description=f"camera of {Path(video).name}")
    timestamps = tracks.frame_indices.astype(np.float64) / tracks.fps
    xy = hidden_as_nan(tracks)
    series = [PoseEstimationSeries(name=name, description=f"vidcorr track of {name}", data=xy[:, k],
                                   unit="pixels", reference_frame=REFERENCE_FRAME, timestamps=timestamps,
                                   confidence=tracks.confidence[:, k].astype(np.float64),
                                   confidence_definition="vidcorr confidence: the attention the point's embedding "
                                   "gives the located pixel relative to its query point, in [0, 1]")
              for k, name in enumerate(names)]
    with warnings.catch_warnings():
        # ndx-pose >= 0.2 deprecates original_videos, labeled_videos, dimensions and devices for ImageSeries
        # links; sleap-io's reader reads original_videos, so they stay.
        warnings.simplefilter("ignore", DeprecationWarning)
        estimation = PoseEstimation(name=f"track={TRACK_NAME}", pose_estimation_series=series,
                                    description=f"points tracked by vidcorr in {Path(video).name}",
                                    original_videos=[video], labeled_videos=[video],
                                    dimensions=np.array([[height, width]], dtype="uint16"), devices=[device],
                                    scorer=str(tracks.meta.get("model", "vidcorr")), source_software="vidcorr",
                                    source_software_version=_version(), skeleton=skeleton)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(video).stem) or "video"
    nwb.create_processing_module(name=f"SLEAP_VIDEO_000_{stem}", description="vidcorr tracks").add(estimation)
    path = Path(path)
    with atomic_path(path) as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwb)
    return path


def _video_name(tracks: Tracks) -> str:
    return str(tracks.meta.get("video") or "video")


def _version() -> str:
    try:
        return version("vidcorr")
    except PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------------------------------- export


def export_tracks(tracks: Tracks | str | os.PathLike, fmt: str, out: str | os.PathLike | None = None,
                  names: Sequence[str] | None = None) -> Path:
    """Write `tracks` (a Tracks or a tracks .npz) in format `fmt` to `out` (default: `default_output`).

    Returns:
        The written file's path.

    Raises:
        InputError: unknown format, unreadable tracks, a suffix the format does not write, an output that is a
            folder or whose folder does not exist or is not writable, sleap-io missing for slp/nwb, bad names.
    """
    fmt = check_format(fmt)
    if not isinstance(tracks, Tracks):
        if out is None:
            out = default_output(tracks, fmt)
        tracks = Tracks.load_npz(tracks)
    elif out is None:
        raise InputError("give the output path when exporting Tracks from memory")
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES[fmt]:
        raise InputError(f"--format {fmt} writes {' or '.join(SUFFIXES[fmt])} files, not {str(out)!r}")
    _check_writable(out)
    if fmt in NEEDS_SLEAP_IO:
        _sleap_io()
    names = point_names(tracks, names)
    if fmt == "slp":
        return write_slp(tracks, out, names)
    if fmt == "nwb":
        return write_nwb(tracks, out, names)
    with atomic_path(out) as tmp:
        if fmt == "dlc":
            tmp.write_text(dlc_csv_text(tracks, names), encoding="utf-8")
        else:
            arrays = tapvid_arrays(tracks) if fmt == "tapvid" else cotracker_arrays(tracks)
            with open(tmp, "wb") as f:
                if out.suffix.lower() == ".pkl":
                    pickle.dump(arrays, f, protocol=4)
                else:
                    np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy stubs mistype **kwargs
    return out


def _check_writable(out: Path) -> None:
    if out.is_dir():
        raise InputError(f"output {str(out)!r} is a folder")
    folder = out.parent
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder {str(folder)!r} is not writable")


__all__ = [
    "FORMATS", "check_format", "cotracker_arrays", "default_output", "dlc_csv_text", "export_tracks",
    "point_names", "sleap_labels", "tapvid_arrays", "write_nwb", "write_slp",
]
