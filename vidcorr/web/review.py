"""The review page: check a track output's doubtful frames and correct them (``vidcorr review OUT``).

`build_review(out)` writes ``<out>/review.html`` (`REVIEW_PAGE`), one page that works from ``file://`` with no
server and no network, over a track output (``tracks.npz`` and its video) or a batch's run folder (``batch.json``:
every finished video, chosen from a list on the page). The frames shown are sampled as ``vidcorr pick`` samples
them (`evenly_spaced` over the tracked frames), plus the frames to check (`vidcorr.io.ranking.rank_frames`, the
`check` most doubtful) and every labelled or "not visible" frame; their pictures are JPEG files in
``<out>/review/`` (``<out>/review/<video's folder>/`` in a batch), shrunk to `max_side`, written whole before the
page, and replaced with it.

On the page: every tracked point on the frame (a disc where visible, a ring where not, a square where labelled, a
cross where marked not visible), its trail, and under the frame a strip chart of each point's confidence and
speed over the whole video with the labels and the frames to check marked; a click on the chart shows the nearest
frame shown. The frames to check are listed by score. Dragging a point makes (or moves) its label on that frame;
Delete or a right-click removes it (never a point's last label); ``H`` marks the selected point not visible here
(or clears the mark); Ctrl-Z undoes. Save downloads ``points.json``, the picker's format
(`vidcorr.io.points.write_points_file` writes the same) with every label, original and corrected, and the marks
(``{"id", "t", "visible": false}``); a batch's names each row's video. ``vidcorr track VIDEO --points-file
points.json --reuse OUT`` then refits only the points whose labels changed.

Data reach the page only in its JSON block (`vidcorr.web.pages.fill_page`), nodes are built with
``textContent``, and the Content-Security-Policy allows the page's own script and style and local images only.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from vidcorr.errors import DataError, InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.names import BATCH_INDEX, REVIEW_DIR, REVIEW_INDEX, REVIEW_PAGE, TRACKS_NPZ
from vidcorr.io.points import POINTS_FORMAT, POINTS_VERSION, PointLabels
from vidcorr.io.ranking import SCORE_RULE, FrameRanking, rank_frames
from vidcorr.io.reader import VideoReader, evenly_spaced
from vidcorr.io.staging import staged_folder
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.web.pages import fill_page, jpeg_bytes, palette_hex
from vidcorr.web.visuals import as_xy

DEFAULT_FRAMES = 50
"""Frames sampled evenly over the tracked frames (the frames to check and the labelled frames come on top)."""
DEFAULT_CHECK = 20
"""Frames to check listed (the most doubtful)."""
DEFAULT_MAX_SIDE = 960
DEFAULT_TRAIL = 10

Progress = Callable[[str, int, int], None]
"""Called as (video's name, pictures done, pictures in all) while a video's frames are written."""


@dataclass(frozen=True)
class ReviewVideo:
    """One track output to review: its folder, tracks, labels and video."""

    name: str
    folder: Path
    tracks: Tracks
    labels: PointLabels
    video: str
    """The video as the output names it (the points file's ``video``, the command's argument)."""
    reader: VideoReader


def output_labels(tracks: Tracks) -> PointLabels:
    """The labels a track output was made from: its recorded labels, else one per point at its query.

    Raises:
        InputError: the output comes from embeddings searched on another video (no frame was labelled).
    """
    if tracks.meta.get("global_search"):
        raise InputError("this output was tracked with embeddings from another video (a global search): none of its "
                         "frames is labelled; track it from points to review it")
    return tracks.labels if tracks.labels is not None else PointLabels.from_queries(tracks.queries)


def _open_output(folder: Path, name: str, video: str | os.PathLike | None) -> ReviewVideo:
    """A track output's tracks, labels and video (`video`, else the one its tracks name)."""
    tracks = Tracks.load_npz(folder / TRACKS_NPZ)
    labels = output_labels(tracks)
    recorded = str(tracks.meta.get("video") or "")
    given = str(video) if video is not None else recorded
    if not given:
        raise InputError(f"{folder / TRACKS_NPZ} does not name its video: give it with --video")
    path = Path(given).expanduser()
    if video is None and not path.exists() and not path.is_absolute() and (folder.parent / path).exists():
        path = folder.parent / path  # a relative name, from where the output's folder lies
    if not path.exists():
        raise InputError(f"the video of {str(folder)!r}, {given!r}, is not found: give it with --video PATH")
    reader = open_video(path, fps=tracks.fps if path.is_dir() else None)  # a folder of frames has no rate of its own
    info = reader.info
    if tuple(info.size) != tuple(tracks.size) or info.num_frames <= int(tracks.frame_indices.max(initial=0)):
        reader.close()
        raise InputError(f"video {given!r} ({info.width}x{info.height}, {info.num_frames} frames) is not the one "
                         f"{str(folder)!r} was tracked on ({tracks.size[0]}x{tracks.size[1]}, frames up to "
                         f"{int(tracks.frame_indices.max(initial=0))})")
    return ReviewVideo(name, folder, tracks, labels, given, reader)


def review_outputs(out: str | os.PathLike, video: str | os.PathLike | None = None) -> list[ReviewVideo]:
    """The track outputs under `out`: itself (a ``tracks.npz``), or a batch's finished videos (``batch.json``).

    Raises:
        InputError: neither, a batch with no finished video, a video that cannot be found or does not fit its
            tracks; `video` given for a batch.
    """
    out = Path(out)
    if not out.is_dir():
        raise InputError(f"{str(out)!r} is not a folder")
    if (out / TRACKS_NPZ).is_file():
        return [_open_output(out, out.resolve().name, video)]
    if not (out / BATCH_INDEX).is_file():
        raise InputError(f"nothing to review in {str(out)!r}: expected {TRACKS_NPZ} (from `vidcorr track`) or "
                         f"{BATCH_INDEX} (a batch's folder)")
    if video is not None:
        raise InputError("--video is for one track output; a batch's videos are those its batch.json names")
    try:
        entries = json.loads((out / BATCH_INDEX).read_text(encoding="utf-8"))["entries"]
        done = [(str(e["output"]), str(e["video"])) for e in entries if e.get("status") == "done" and e.get("output")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{out / BATCH_INDEX}: not a batch index ({type(exc).__name__}: {exc})") from None
    if not done:
        raise InputError(f"the batch in {str(out)!r} has no finished video to review yet")
    return [_open_output(out / name, name, path) for name, path in done]


def shown_rows(tracks: Tracks, labels: PointLabels, ranking: FrameRanking, frames: int, check: int) -> list[int]:
    """The rows whose pictures the page shows: `frames` spread evenly over the tracked rows (the picker's rule),
    the `check` most doubtful, and every row where a point is labelled or marked not visible; ascending."""
    rows = set(evenly_spaced(tracks.num_frames, frames))
    rows |= {int(r) for r in ranking.order[:check]}
    marked = {int(t) for table in labels.labels for t in table[:, 0]}
    marked |= {int(t) for p in range(labels.num_points) for t in labels.hidden_of(p)}
    rows |= {r for r, f in enumerate(tracks.frame_indices.tolist()) if f in marked}
    return sorted(rows)


def _round(values: np.ndarray, digits: int) -> list[Any]:
    return np.round(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0), digits).tolist()


def video_data(item: ReviewVideo, pictures: dict[int, str], ranking: FrameRanking, check: int,
               trail: int) -> dict[str, Any]:
    """What the page knows of one video: its tracks, labels, scores and the pictures (frame -> URL) shown."""
    tracks, labels = item.tracks, item.labels
    info = item.reader.info
    row_of = {int(f): r for r, f in enumerate(tracks.frame_indices.tolist())}
    return {
        "name": item.name, "video": item.video, "file_name": Path(item.video).name,
        "size": [int(tracks.size[0]), int(tracks.size[1])], "num_frames": int(info.num_frames),
        "fps": float(tracks.fps), "trail": int(trail),
        "ids": list(labels.ids),
        "labels": [[[int(t), float(x), float(y)] for t, x, y in table] for table in labels.labels],
        "hidden": [[int(t) for t in labels.hidden_of(p)] for p in range(labels.num_points)],
        "refitted": [str(i) for i in tracks.meta.get("refitted", []) or []],
        "rows": {"frames": tracks.frame_indices.tolist(),
                 "points": [[as_xy(p, 2) for p in row] for row in tracks.points],
                 "visible": tracks.visible.tolist(),
                 "confidence": _round(tracks.confidence, 3),
                 "speed": _round(ranking.speed_px, 2)},
        "ranking": {"score": _round(ranking.score, 4), "low": _round(ranking.low_confidence, 4),
                    "jump": _round(ranking.jump_px, 2), "low_point": ranking.confidence_point.tolist(),
                    "jump_point": ranking.jump_point.tolist(), "check": [int(r) for r in ranking.order[:check]]},
        "shown": [{"frame": frame, "row": row_of[frame], "image": url} for frame, url in sorted(pictures.items())],
    }


def next_output_name(out: Path) -> str:
    """The folder a re-track of `out` suggests: ``clip_vidcorr`` -> ``clip_vidcorr_2`` -> ``clip_vidcorr_3``."""
    stem, _, number = out.name.rpartition("_")
    if stem and number.isdigit():
        return str(out.with_name(f"{stem}_{int(number) + 1}"))
    return str(out.with_name(f"{out.name}_2"))


def retrack_command(out: Path, videos: list[ReviewVideo], batch: bool) -> str:
    """The ``vidcorr track`` command that re-tracks `out` with the saved points file, reusing its embeddings."""
    inputs = " ".join(shlex.quote(v.video) for v in videos)
    return (f"vidcorr track {inputs} --points-file points.json --reuse {shlex.quote(str(out))} "
            f"--out {shlex.quote(next_output_name(out))}" + (" --batch" if batch and len(videos) == 1 else ""))


def build_review(out: str | os.PathLike, *, video: str | os.PathLike | None = None, frames: int = DEFAULT_FRAMES,
                 check: int = DEFAULT_CHECK, max_side: int = DEFAULT_MAX_SIDE, trail: int = DEFAULT_TRAIL,
                 progress: Progress | None = None) -> Path:
    """Write ``<out>/review.html`` and its pictures (see the module docstring). Returns the page's path.

    Args:
        out: a track output folder, or a batch's run folder.
        video: the video of a single output, where the path its tracks recorded no longer leads to it.
        frames: frames spread evenly over the tracked frames (1..500); check: frames to check listed (0..500).
        max_side: longest side of the pictures in pixels (>= 16); points stay in the video's own pixels.
        trail: tracked frames of trail drawn behind each point.
        progress: called per picture written.

    Raises:
        InputError: bad counts, nothing to review (see `review_outputs`). DataError: a malformed batch index.
    """
    if not 1 <= frames <= 500:
        raise InputError(f"--frames {frames} is invalid: it must be between 1 and 500")
    if not 0 <= check <= 500:
        raise InputError(f"--check {check} is invalid: it must be between 0 and 500")
    if max_side < 16:
        raise InputError(f"--max-side {max_side} is invalid: it must be at least 16 pixels")
    if trail < 0:
        raise InputError(f"--trail {trail} is invalid: it must be >= 0")
    out = Path(out)
    videos = review_outputs(out, video)
    batch = (out / BATCH_INDEX).is_file()
    try:
        listed = []
        with staged_folder(out / REVIEW_DIR, overwrite=True, replaceable=frozenset({REVIEW_INDEX})) as staged:
            for item in videos:
                ranking = rank_frames(item.tracks, item.labels)
                folder = staged.path / item.name if batch else staged.path
                prefix = f"{REVIEW_DIR}/{quote(item.name)}/" if batch else f"{REVIEW_DIR}/"
                folder.mkdir(exist_ok=True)
                pictures = {}
                rows = shown_rows(item.tracks, item.labels, ranking, frames, check)
                for done, row in enumerate(rows, start=1):
                    frame = int(item.tracks.frame_indices[row])
                    name = f"frame{frame:06d}.jpg"
                    (folder / name).write_bytes(jpeg_bytes(item.reader.get_frame(frame), max_side))
                    pictures[frame] = prefix + name
                    if progress is not None:
                        progress(item.name, done, len(rows))
                listed.append(video_data(item, pictures, ranking, check, trail))
            (staged.path / REVIEW_INDEX).write_text(json.dumps({"videos": [v["name"] for v in listed]}) + "\n")
        data = {"title": out.resolve().name, "batch": batch, "format": POINTS_FORMAT, "version": POINTS_VERSION,
                "palette": palette_hex(), "score_rule": SCORE_RULE, "out": str(out),
                "command": retrack_command(out, videos, batch), "videos": listed}
        page = out / REVIEW_PAGE
        with atomic_path(page) as tmp:
            tmp.write_text(review_html(data), encoding="utf-8")
    finally:
        for item in videos:
            item.reader.close()
    return page


def review_html(data: dict[str, Any]) -> str:
    """The page: ``assets/review.html`` with its style, script and data, under a policy that admits its own
    script and style and images from its folder only."""
    return fill_page("review", data, img_src="'self' file: data:")
