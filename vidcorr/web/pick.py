"""The point picker: a self-contained page to click query points on a video's frames (``vidcorr pick``).

`build_pick_page(video, page)` writes one HTML file that works from ``file://`` with no server and no
network: frames sampled evenly from the video are embedded as JPEG ``data:`` URIs, and the page's
HTML, CSS and JavaScript come from the package data files ``vidcorr/assets/pick.{html,css,js}``.

On the page a click adds a point on the frame shown; with a point selected, a click on a frame where that
point has no label yet adds a label to it (one point labelled on several frames: same id, same colour);
Escape or "New point" clears the selection, so that the next click starts a new point. A label can be
dragged; Delete (or Backspace) and a right-click remove the label on the frame shown (a point goes with its
last label), the table's x a label on any frame, and Ctrl-Z (or the Undo button) undoes the last change.
Points labelled only on other frames show faintly ("ghosts", at their label nearest in time) on the frame in
view. Point ``i`` is numbered ``i`` and drawn in ``point_colors(...)[i]``, the colour `vidcorr.render` gives
track ``i``, so the picked points look as the annotated video will. The page shows the ``vidcorr track``
command for the points and saves them as ``points.json``:

``{"format": "vidcorr-points", "version": 1, "video": "<as given>", "size": [W, H], "num_frames": T,
"points": [{"id": i, "t": frame, "x": x, "y": y}, ...]}``

one entry per label (a point labelled on K frames has K entries with its id, sorted by frame), with x, y in
the video's own pixels, pixel centres at +0.5 (a click on the centre of the top-left pixel gives (0.5,
0.5)), which ``vidcorr track --points-file`` reads (`vidcorr.io.points.read_points_file`).

The data reach the page only inside a ``<script type="application/json">`` block with ``<``, ``>`` and
``&`` escaped; the script builds every node from data with ``textContent``, and a
Content-Security-Policy allows only the page's own script and style (by hash) and ``data:`` images.
"""

from __future__ import annotations

import base64
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.points import POINTS_FORMAT, POINTS_VERSION
from vidcorr.io.reader import VideoReader, evenly_spaced
from vidcorr.io.staging import check_output
from vidcorr.io.video import open_video
from vidcorr.web.pages import JPEG_QUALITY, embed_json, fill_page, jpeg_bytes, palette_hex

DEFAULT_FRAMES = 50
DEFAULT_MAX_SIDE = 960
MAX_FRAMES = 500

FrameProgress = Callable[[int, int], None]
"""Called as (frames done, frames in all) while frames are read and encoded."""


def sample_frames(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over 0..num_frames-1, first and last included, ascending and
    distinct (all frames when the video has no more than `count`)."""
    if num_frames < 1:
        raise InputError("the video has no frames")
    if count < 1:
        raise InputError(f"frame count {count} is invalid: it must be >= 1")
    return evenly_spaced(num_frames, count)


def jpeg_data_uri(image: np.ndarray, max_side: int, quality: int = JPEG_QUALITY) -> str:
    """uint8 (H, W, 3) RGB -> a ``data:image/jpeg;base64,...`` URI of `jpeg_bytes`."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, max_side, quality)).decode("ascii")


def pick_data(video: str | os.PathLike | VideoReader, *, frames: int = DEFAULT_FRAMES,
              max_side: int = DEFAULT_MAX_SIDE, video_arg: str | None = None,
              progress: FrameProgress | None = None) -> dict[str, Any]:
    """What the page embeds: the video's size, frame count and fps, the sampled frames as data URIs, the
    palette, and the video as the ``vidcorr track`` command should name it.

    Args:
        video: a video path (or an open reader).
        frames: how many frames to sample (1..MAX_FRAMES).
        max_side: longest side of the embedded pictures in pixels (>= 16); coordinates stay in the
            video's own pixels whatever the pictures' size.
        video_arg: the video as it should appear in the command (default: the path as given).
        progress: called after each frame.

    Raises:
        InputError: a bad count or side, or a video that cannot be read.
    """
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"--frames {frames} is invalid: it must be between 1 and {MAX_FRAMES}")
    if max_side < 16:
        raise InputError(f"--max-side {max_side} is invalid: it must be at least 16 pixels")
    reader = open_video(video)
    name = video_arg if video_arg is not None else (reader.name if isinstance(video, VideoReader) else str(video))
    info = reader.info
    chosen = sample_frames(info.num_frames, frames)
    pictures = []
    for done, t in enumerate(chosen, start=1):
        pictures.append({"frame": t, "src": jpeg_data_uri(reader.get_frame(t), max_side)})
        if progress is not None:
            progress(done, len(chosen))
    return {
        "video": name, "video_arg": shlex.quote(name), "file_name": Path(name).name,
        "size": [int(info.width), int(info.height)], "num_frames": int(info.num_frames), "fps": float(info.fps),
        "format": POINTS_FORMAT, "version": POINTS_VERSION,
        "palette": palette_hex(), "frames": pictures,
    }


def build_pick_page(video: str | os.PathLike | VideoReader, page: str | os.PathLike, *,
                    frames: int = DEFAULT_FRAMES, max_side: int = DEFAULT_MAX_SIDE, video_arg: str | None = None,
                    progress: FrameProgress | None = None, overwrite: bool = False,
                    overwrite_hint: str = "overwrite=True") -> Path:
    """Write the picker page for `video` to `page` (atomically; see the module docstring). Returns its path.

    An existing `page` is replaced only with `overwrite` (`overwrite_hint`: how the caller's user asks for it,
    for the refusal's message), and never when it is the video itself.

    Raises:
        InputError: as `pick_data`, or `page` is a folder, its folder does not exist, or it is the video.
        OutputExistsError: `page` exists and `overwrite` is False.
    """
    page = Path(page)
    if page.is_dir():
        raise InputError(f"output {str(page)!r} is a folder; give a file name such as pick.html")
    if not page.parent.is_dir():
        raise InputError(f"output folder {str(page.parent)!r} does not exist")
    if not isinstance(video, VideoReader) and page.exists() and page.resolve() == Path(video).resolve():
        raise InputError(f"output {str(page)!r} is the input video; give another file name such as pick.html")
    check_output(page, folder=False, overwrite=overwrite, overwrite_hint=overwrite_hint)
    html = pick_html(pick_data(video, frames=frames, max_side=max_side, video_arg=video_arg, progress=progress))
    with atomic_path(page) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return page


def pick_html(data: dict[str, Any]) -> str:
    """The page: ``assets/pick.html`` with the style, script, data and a Content-Security-Policy (the
    page's own script and style by hash, ``data:`` images, nothing else) filled in."""
    return fill_page("pick", data, img_src="data:")


__all__ = [
    "DEFAULT_FRAMES", "DEFAULT_MAX_SIDE", "MAX_FRAMES", "build_pick_page", "embed_json", "jpeg_data_uri",
    "palette_hex", "pick_data", "pick_html", "sample_frames",
]
