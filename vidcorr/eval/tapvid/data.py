"""TAP-Vid readers (DAVIS, RGB-Stacking, Kinetics) and query sampling, as tapnet builds them.

Reference: google-deepmind/tapnet, ``tapnet/tapvid/evaluation_datasets.py`` (``create_davis_dataset``,
``create_rgb_stacking_dataset``, ``create_kinetics_dataset``, ``resize_video``, ``sample_queries_first``,
``sample_queries_strided``) and ``tapnet/tapvid/generate_tapvid.py`` (how the Kinetics shards are written).

On disk:

- DAVIS: one pickle holding a dict ``video_name -> {"video", "points", "occluded"}``.
- RGB-Stacking: one pickle holding a list of such dicts (no names; vidcorr names them ``<stem>_<index>``).
- Kinetics: shards ``NNNN_of_MMMM.pkl``, each a list (or dict) of such dicts whose ``"video"`` is a
  sequence of JPEG-encoded frames (bytes); vidcorr names them ``<shard stem>_<index>``.

with ``video`` uint8 (T, H, W, 3), ``points`` float (N, T, 2) x, y as fractions of the width and height,
``occluded`` bool (N, T).

Pickles are read with :class:`RestrictedUnpickler`, which builds numpy arrays and plain containers and
nothing else: a pickle that names any other callable is refused before any of it runs.

Frames are resized to 256x256 the way tapnet does it: ``resize_video`` calls mediapy's ``resize_video``,
which for uint8 RGB frames is ``PIL.Image.resize(..., resample=LANCZOS)`` frame by frame; vidcorr calls the
same PIL filter, so its frames are tapnet's frames bit for bit (OpenCV's ``INTER_LANCZOS4`` is a fixed 8x8
kernel that does not widen when shrinking, so it aliases and differs). Like tapnet, a video already
256x256 is left alone. Points become pixels by multiplying the fractions by the frame width and height
(tapnet: ``target_points * [width, height]``), with no half-pixel shift of vidcorr's own, so the scores
are tapnet's. (``generate_tapvid.py`` stored the Kinetics fractions as ``(x * W - 0.5) / W`` from the
annotation CSV; vidcorr keeps the numbers exactly as tapnet reads them.)
"""

from __future__ import annotations

import builtins
import codecs
import fnmatch
import io
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from vidcorr.errors import DataError
from vidcorr.eval.tapvid.metrics import normalize_query_mode

EVAL_SIZE_HW: tuple[int, int] = (256, 256)
"""(height, width) of the frames TAP-Vid metrics are computed on."""

QUERY_STRIDE = 5
"""tapnet's ``sample_queries_strided`` default: a query every 5 frames."""

DATASETS: tuple[str, ...] = ("davis", "rgb_stacking", "kinetics")


# --------------------------------------------------------------------------------------------------------
# Restricted unpickling


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``: pickle protocols 0-2 store bytes as latin-1 text; nothing else."""
    if encoding.replace("_", "-").lower() not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} (only latin-1 is allowed)")
    return codecs.encode(text, "latin-1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The numpy callables array pickles name, written by numpy 1.x (``numpy.core``) or 2.x (``numpy._core``).

    They are taken from the installed numpy's own reductions, so no private module is imported by name.
    """
    sample = np.zeros(1)
    reconstruct = sample.__reduce__()[0]
    frombuffer = sample.__reduce_ex__(5)[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


_BUILTIN_NAMES = "dict list tuple set frozenset bytes bytearray str int float complex bool".split()
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **_numpy_globals(),
    **{("builtins", name): getattr(builtins, name) for name in _BUILTIN_NAMES},
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy-array and builtin-container globals.

    Every callable a pickle can invoke is first looked up through :meth:`find_class`; refusing there means
    a hostile pickle (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) stops with a
    :class:`DataError` before any of its code runs. Allowed: ``numpy.ndarray``, ``numpy.dtype``,
    ``numpy[._]core.multiarray._reconstruct`` / ``.scalar``, ``numpy[._]core.numeric._frombuffer``
    (protocol 5 arrays), builtins dict/list/tuple/set/frozenset/bytes/bytearray/str/int/float/complex/bool,
    and ``_codecs.encode`` restricted to latin-1 (how protocols 0-2 store bytes).
    """

    def __init__(self, file: IO[bytes], source: Path) -> None:
        # latin1: numpy's advice for array pickles written by Python 2; Python 3 pickles are unaffected.
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed object for ``module.name``; raise :class:`DataError` for anything else."""
        key = ("builtins" if module == "__builtin__" else module, name)
        if key not in _ALLOWED_GLOBALS:
            raise DataError(
                f"TAP-Vid reader refuses to load {module}.{name} from {self._source}: only numpy arrays and "
                "builtin containers may appear in a TAP-Vid pickle"
            )
        return _ALLOWED_GLOBALS[key]


def load_tapvid_pickle(path: str | Path) -> Any:
    """Unpickle a TAP-Vid file with :class:`RestrictedUnpickler`.

    Raises:
        DataError: the file is missing, is not a pickle, is truncated, or names a disallowed global.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"TAP-Vid file {path} does not exist")
    try:
        with path.open("rb") as handle:
            return RestrictedUnpickler(handle, path).load()
    except DataError:
        raise
    except Exception as exc:  # any failure inside pickle means a malformed file
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read TAP-Vid pickle {path}: {message}") from exc


# --------------------------------------------------------------------------------------------------------
# Videos


@dataclass(frozen=True, eq=False)
class TapVidVideo:
    """One TAP-Vid video with its ground-truth tracks.

    Attributes:
        name: DAVIS video name, or ``<file stem>_<index:04d>`` for RGB-Stacking and Kinetics.
        frames: uint8 (T, H, W, 3) RGB, 256x256 unless read with ``full_res=True``.
        points: float64 (N, T, 2) x, y in pixels of ``frames``: the file's fractions times (W, H).
        occluded: bool (N, T), True where the point is occluded.
        eval_points: float64 (N, T, 2) x, y in pixels of the 256x256 evaluation frames; equal to ``points``
            unless ``full_res=True``. Always computed from the file's fractions (fraction * 256), as tapnet.
        source_size_hw: (H, W) of the frames as stored in the file.
    """

    name: str
    frames: np.ndarray
    points: np.ndarray
    occluded: np.ndarray
    eval_points: np.ndarray
    source_size_hw: tuple[int, int]

    @property
    def num_frames(self) -> int:
        """T."""
        return int(self.frames.shape[0])

    @property
    def num_points(self) -> int:
        """N."""
        return int(self.points.shape[0])

    @property
    def size_hw(self) -> tuple[int, int]:
        """(H, W) of ``frames``."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def to_eval_px(self, points_xy: np.ndarray) -> np.ndarray:
        """Map x, y pixels of ``frames`` (any shape (..., 2)) to 256x256 evaluation pixels, float64.

        The identity for 256x256 frames; with ``full_res=True`` it scales x by 256 / W and y by 256 / H, as
        tapnet's README asks of full-resolution predictions before scoring.
        """
        height, width = self.size_hw
        scale = np.array([EVAL_SIZE_HW[1] / width, EVAL_SIZE_HW[0] / height])
        return np.asarray(points_xy, dtype=np.float64) * scale


def resize_frames(frames: np.ndarray, size_hw: tuple[int, int] = EVAL_SIZE_HW) -> np.ndarray:
    """Resize uint8 (T, H, W, 3) frames to (T, h, w, 3) with PIL's Lanczos filter (mediapy/tapnet's resize).

    Frames already of size ``size_hw`` are returned unchanged, as tapnet does.
    """
    if tuple(frames.shape[1:3]) == tuple(size_hw):
        return frames
    target_wh = (size_hw[1], size_hw[0])
    lanczos = Image.Resampling.LANCZOS
    return np.stack([np.asarray(Image.fromarray(f).resize(target_wh, resample=lanczos)) for f in frames])


def _decode_jpeg_frames(encoded: Sequence[bytes], source: Path, name: str) -> np.ndarray:
    """uint8 (T, H, W, 3) from JPEG bytes, decoded with PIL as tapnet's ``create_kinetics_dataset`` does."""
    frames = []
    for index, data in enumerate(encoded):
        try:
            with Image.open(io.BytesIO(bytes(data))) as image:
                frames.append(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
        except Exception as exc:  # PIL raises several types for corrupt data
            raise DataError(f"{source}: video {name!r} frame {index} is not a readable JPEG ({exc})") from exc
    if not frames:
        raise DataError(f"{source}: video {name!r} has no frames")
    if len({frame.shape for frame in frames}) != 1:
        raise DataError(f"{source}: video {name!r} has frames of different sizes")
    return np.stack(frames)


def _to_video(example: Any, name: str, source: Path, full_res: bool) -> TapVidVideo:
    """Validate one raw example dict and build its :class:`TapVidVideo`."""
    if not isinstance(example, dict):
        raise DataError(f"{source}: video {name!r} is a {type(example).__name__}, expected a dict")
    for key in ("video", "points", "occluded"):
        if key not in example:
            raise DataError(f"{source}: video {name!r} lacks the key {key!r}")
    frames = example["video"]
    if len(frames) and isinstance(frames[0], bytes):
        frames = _decode_jpeg_frames(frames, source, name)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DataError(
            f"{source}: video {name!r} frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    points = np.asarray(example["points"])
    occluded = np.asarray(example["occluded"])
    num_frames = frames.shape[0]
    if points.ndim != 3 or points.shape[1:] != (num_frames, 2) or points.dtype.kind != "f":
        raise DataError(
            f"{source}: video {name!r} points must be float (N, {num_frames}, 2), "
            f"got {points.dtype} {points.shape}"
        )
    if occluded.shape != points.shape[:2]:
        raise DataError(
            f"{source}: video {name!r} occluded must have shape {points.shape[:2]}, got {occluded.shape}"
        )
    if occluded.dtype != np.bool_:
        if not (np.issubdtype(occluded.dtype, np.integer) and np.isin(occluded, (0, 1)).all()):
            raise DataError(f"{source}: video {name!r} occluded must be bool, got {occluded.dtype}")
        occluded = occluded.astype(bool)

    source_size_hw = (int(frames.shape[1]), int(frames.shape[2]))
    fractions = points.astype(np.float64)
    eval_points = fractions * np.array([EVAL_SIZE_HW[1], EVAL_SIZE_HW[0]], dtype=np.float64)
    if full_res:
        frame_points = fractions * np.array([source_size_hw[1], source_size_hw[0]], dtype=np.float64)
    else:
        frames = resize_frames(frames, EVAL_SIZE_HW)
        frame_points = eval_points
    return TapVidVideo(
        name=name,
        frames=frames,
        points=frame_points,
        occluded=occluded,
        eval_points=eval_points,
        source_size_hw=source_size_hw,
    )


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of videos, got {limit}")


def _named_examples(data: Any, source: Path) -> list[tuple[str, Any]]:
    """(name, raw example) pairs from a dict (keys are names) or a list (``<stem>_<index:04d>``)."""
    if isinstance(data, dict):
        return [(str(key), value) for key, value in data.items()]
    if isinstance(data, (list, tuple)):
        return [(f"{source.stem}_{index:04d}", value) for index, value in enumerate(data)]
    raise DataError(f"{source}: expected a dict or a list of videos, got a {type(data).__name__}")


def _iter_videos(
    sources: Sequence[Path],
    expect: type | None,
    full_res: bool,
    videos: Sequence[str] | None,
    limit: int | None,
) -> Iterator[TapVidVideo]:
    """Shared reading loop: load each pickle, filter by name patterns, build videos, stop at ``limit``."""
    _check_limit(limit)
    videos = [videos] if isinstance(videos, str) else list(videos or ())
    unmatched = set(videos)
    yielded = 0
    for source in sources:
        data = load_tapvid_pickle(source)
        if expect is not None and not isinstance(data, expect):
            raise DataError(f"{source}: expected a {expect.__name__} of videos, got a {type(data).__name__}")
        named = _named_examples(data, source)
        if len(sources) == 1 and videos:
            # One file: every name is known now, so a pattern that matches nothing is reported at once.
            missing = [p for p in videos if not any(fnmatch.fnmatchcase(n, p) for n, _ in named)]
            if missing:
                raise DataError(f"{source}: no video matches {', '.join(missing)}")
        for name, example in named:
            if not _matches(name, videos):
                continue
            unmatched -= {p for p in unmatched if fnmatch.fnmatchcase(name, p)}
            yield _to_video(example, name, source, full_res)
            yielded += 1
            if limit is not None and yielded >= limit:
                return
    if unmatched:
        raise DataError(f"{sources[0].parent}: no video matches {', '.join(sorted(unmatched))}")


def read_davis(
    path: str | Path,
    *,
    full_res: bool = False,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[TapVidVideo]:
    """Videos of TAP-Vid-DAVIS (``tapvid_davis.pkl``) in the file's order; tapnet: ``create_davis_dataset``.

    Args:
        path: the pickle (a dict video name -> example).
        full_res: keep the frames as stored instead of resizing them to 256x256 (tapnet's full-resolution
            mode reads frames from tfds instead; vidcorr uses the pickle's own frames). Score with
            ``video.to_eval_px(predictions)`` against ``video.eval_points``.
        videos: names or shell patterns (``fnmatch``) to keep, None or empty for all; a pattern that
            matches nothing is a DataError.
        limit: stop after this many videos (after filtering).
    """
    return _iter_videos([Path(path)], dict, full_res, videos, limit)


def read_rgb_stacking(
    path: str | Path,
    *,
    full_res: bool = False,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[TapVidVideo]:
    """Videos of TAP-Vid-RGB-Stacking (a list of examples), named ``<stem>_<index:04d>``.

    tapnet: ``create_rgb_stacking_dataset``. Arguments as :func:`read_davis`.
    """
    return _iter_videos([Path(path)], list, full_res, videos, limit)


def kinetics_shards(path: str | Path) -> list[Path]:
    """The Kinetics shard files: ``path`` itself if it is a file, else its ``*_of_*.pkl`` sorted by name.

    tapnet's ``create_kinetics_dataset`` globs ``*_of_0010.pkl`` (the default 10 shards of
    ``generate_tapvid.py``); any shard count is accepted here, and the order is made deterministic.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"TAP-Vid-Kinetics path {path} does not exist")
    shards = sorted(path.glob("*_of_*.pkl"))
    if not shards:
        raise DataError(f"{path}: no TAP-Vid-Kinetics shards (*_of_*.pkl) found")
    return shards


def read_kinetics(
    path: str | Path,
    *,
    full_res: bool = False,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[TapVidVideo]:
    """Videos of TAP-Vid-Kinetics, shard by shard; frames are JPEG bytes decoded with PIL (as tapnet).

    tapnet: ``create_kinetics_dataset``. ``path`` is one shard or the folder of shards (see
    :func:`kinetics_shards`). Videos are named ``<shard stem>_<index:04d>`` (e.g. ``0000_of_0010_0003``),
    or by key where a shard holds a dict. With several shards, a ``videos`` pattern that matched nothing
    is reported after the last shard. Other arguments as :func:`read_davis`.
    """
    return _iter_videos(kinetics_shards(path), None, full_res, videos, limit)


def read_tapvid(
    dataset: str,
    path: str | Path,
    *,
    full_res: bool = False,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[TapVidVideo]:
    """Dispatch to :func:`read_davis`, :func:`read_rgb_stacking` or :func:`read_kinetics` by name."""
    readers: dict[str, Callable[..., Iterator[TapVidVideo]]] = {
        "davis": read_davis,
        "rgb_stacking": read_rgb_stacking,
        "kinetics": read_kinetics,
    }
    if dataset not in readers:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    return readers[dataset](path, full_res=full_res, videos=videos, limit=limit)


# --------------------------------------------------------------------------------------------------------
# Queries


@dataclass(frozen=True, eq=False)
class TapVidQueries:
    """Queries sampled from a video's tracks, with the ground truth each one is scored against.

    Attributes:
        query_points: float64 (Q, 3) t, x, y. NOTE: tapnet stores (t, y, x); vidcorr's order is (t, x, y),
            like every vidcorr query. t is an integer-valued frame index.
        target_points: float64 (Q, T, 2) x, y of the query's whole track (repeated for each query that
            samples the same track).
        occluded: bool (Q, T) the track's occlusion flags, repeated likewise.
        track_index: int64 (Q,) which input track (row of ``points``) each query samples; tapnet's
            ``trackgroup``.
        query_mode: ``"first"`` or ``"strided"``.
        labels: K, the labels asked for per query (1: tapnet's protocol, the query alone).
        label_points: with K > 1, per query a float64 (K_q, 3) array of t, x, y (in the space of
            ``query_points``, sorted by t, the query among them; see :func:`label_frames`); None with K = 1.
    """

    query_points: np.ndarray
    target_points: np.ndarray
    occluded: np.ndarray
    track_index: np.ndarray
    query_mode: str
    labels: int = 1
    label_points: tuple[np.ndarray, ...] | None = None

    @property
    def num_queries(self) -> int:
        """Q."""
        return int(self.query_points.shape[0])

    def label_mask(self, num_frames: int) -> np.ndarray | None:
        """bool (Q, T): True on every frame that is one of a query's labels (never scored); None with K = 1."""
        if self.label_points is None:
            return None
        mask = np.zeros((self.num_queries, num_frames), dtype=bool)
        for q, rows in enumerate(self.label_points):
            mask[q, rows[:, 0].astype(np.int64)] = True
        return mask


def _check_tracks(occluded: np.ndarray, points_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    occluded = np.asarray(occluded)
    points_xy = np.asarray(points_xy, dtype=np.float64)
    if occluded.dtype != np.bool_ or occluded.ndim != 2:
        raise ValueError(f"occluded must be bool (N, T), got {occluded.dtype} {occluded.shape}")
    if points_xy.shape != (*occluded.shape, 2):
        raise ValueError(f"points_xy must have shape {(*occluded.shape, 2)}, got {points_xy.shape}")
    return occluded, points_xy


def _gather(
    occluded: np.ndarray, points_xy: np.ndarray, tracks: np.ndarray, frames: np.ndarray, mode: str
) -> TapVidQueries:
    """TapVidQueries for the (track, frame) pairs given in order."""
    xy = points_xy[tracks, frames] if tracks.size else np.zeros((0, 2))
    query_points = np.concatenate([frames[:, None].astype(np.float64), xy], axis=1)
    return TapVidQueries(
        query_points=query_points,
        target_points=points_xy[tracks],
        occluded=occluded[tracks],
        track_index=tracks.astype(np.int64),
        query_mode=mode,
    )


def sample_queries_first(occluded: np.ndarray, points_xy: np.ndarray) -> TapVidQueries:
    """One query per track, at its first visible frame (tapnet's ``sample_queries_first``).

    Tracks never visible are dropped; the others keep their order. Queries and targets share the space of
    ``points_xy``.

    Args:
        occluded: bool (N, T), True = occluded.
        points_xy: float (N, T, 2) x, y.
    """
    occluded, points_xy = _check_tracks(occluded, points_xy)
    tracks = np.flatnonzero((~occluded).any(axis=1))
    frames = np.argmax(~occluded[tracks], axis=1) if tracks.size else np.zeros(0, dtype=np.int64)
    return _gather(occluded, points_xy, tracks, frames.astype(np.int64), "first")


def sample_queries_strided(
    occluded: np.ndarray, points_xy: np.ndarray, stride: int = QUERY_STRIDE
) -> TapVidQueries:
    """Queries every ``stride`` frames from every track visible there (tapnet's ``sample_queries_strided``).

    For t = 0, stride, 2*stride, ... < T, each track visible at t gives the query (t, x_t, y_t), ordered by
    t and then by track; the query's target and occlusion rows are its track's full rows, so a track
    queried k times appears k times. Queries and targets share the space of ``points_xy``.

    Args:
        occluded: bool (N, T), True = occluded.
        points_xy: float (N, T, 2) x, y.
        stride: frames between query frames (tapnet: 5).
    """
    if stride < 1:
        raise ValueError(f"stride must be a positive number of frames, got {stride}")
    occluded, points_xy = _check_tracks(occluded, points_xy)
    query_frames = np.arange(0, occluded.shape[1], stride)
    # nonzero on the (frame, track) grid lists frame-major, then track: the order tapnet concatenates in.
    frame_grid, track_grid = np.nonzero(~occluded[:, query_frames].T)
    return _gather(occluded, points_xy, track_grid.astype(np.int64), query_frames[frame_grid], "strided")


def sample_queries(
    occluded: np.ndarray, points_xy: np.ndarray, query_mode: str, stride: int = QUERY_STRIDE
) -> TapVidQueries:
    """:func:`sample_queries_first` or :func:`sample_queries_strided` by ``query_mode``."""
    if normalize_query_mode(query_mode) == "first":
        return sample_queries_first(occluded, points_xy)
    return sample_queries_strided(occluded, points_xy, stride)


def label_frames(occluded: np.ndarray, query_frame: int, count: int) -> np.ndarray:
    """The frames of one query's `count` labels, ascending: the query's frame, plus ``count - 1`` visible frames
    of its track evenly spaced over the track's visible span.

    The span runs from the track's first to its last visible frame, a to b; label j (j = 0 .. count - 2) is the
    visible frame nearest to a + (b - a) (j + 0.5) / (count - 1) (the centres of count - 1 equal parts), the
    earlier on a tie, among those not taken yet (the query's frame is taken first). A track with fewer visible
    frames than `count` gives all of them.

    Args:
        occluded: bool (T,) the query's track. query_frame: the query's frame (visible). count: K >= 1.
    """
    if count < 1:
        raise ValueError(f"labels per query must be at least 1, got {count}")
    visible = np.flatnonzero(~np.asarray(occluded, dtype=bool))
    chosen = [int(query_frame)]
    for j in range(count - 1):
        free = visible[~np.isin(visible, chosen)]
        if not len(free):
            break
        target = visible[0] + (visible[-1] - visible[0]) * (j + 0.5) / (count - 1)
        chosen.append(int(free[np.argmin(np.abs(free - target))]))  # argmin: the first, earlier, of a tie
    return np.array(sorted(chosen), dtype=np.int64)


def video_queries(video: TapVidVideo, query_mode: str, stride: int = QUERY_STRIDE, labels: int = 1) -> TapVidQueries:
    """Queries of ``video`` ready for tracking and scoring, with `labels` labels each (see :func:`label_frames`).

    ``query_points`` (and ``label_points``) are in pixels of ``video.frames`` (what the tracker is given) while
    ``target_points`` are in 256x256 evaluation pixels (what
    :func:`~vidcorr.eval.tapvid_metrics.compute_tapvid_metrics` compares ``video.to_eval_px(predictions)`` with).
    Without ``full_res`` the two spaces are the same.
    """
    in_frames = sample_queries(video.occluded, video.points, query_mode, stride)
    in_eval = sample_queries(video.occluded, video.eval_points, query_mode, stride)
    label_points = None
    if labels != 1:
        label_points = []
        for track, query in zip(in_frames.track_index.tolist(), in_frames.query_points, strict=True):
            frames = label_frames(video.occluded[track], int(query[0]), labels)
            label_points.append(np.column_stack([frames.astype(np.float64), video.points[track, frames]]))
    return TapVidQueries(
        query_points=in_frames.query_points,
        target_points=in_eval.target_points,
        occluded=in_frames.occluded,
        track_index=in_frames.track_index,
        query_mode=in_frames.query_mode,
        labels=labels,
        label_points=None if label_points is None else tuple(label_points),
    )
