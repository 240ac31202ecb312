"""Drawing tracked points, trails, correspondence lines and heat maps (OpenCV, anti-aliased).

All images are uint8 (H, W, 3) RGB and all points (x, y) in the image's own pixels with pixel
centres at +0.5, the convention of `vidcorr.tracks`. OpenCV puts pixel centres at integers, so
every point is shifted by -0.5 before drawing, and drawn with sub-pixel precision.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.images import check_image
from vidcorr.io.reader import VideoReader
from vidcorr.io.staging import verify_written_video
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.io.writer import VideoWriter

# Heat maps, trails and the like may be given per tracks row as an array, a sequence or a function.
HeatmapSource = np.ndarray | Sequence[np.ndarray] | Callable[[int], "np.ndarray | None"]

CORRECT_RGB = (0, 200, 0)
WRONG_RGB = (230, 0, 0)
_OUTLINE_RGB = (0, 0, 0)
_SHIFT = 4  # OpenCV fixed-point bits: coordinates to 1/16 pixel
_ONE = 1 << _SHIFT
_GOLDEN = 0.6180339887498949


def point_colors(n: int) -> np.ndarray:
    """`n` distinct, saturated colours, the same for the same `n` (point i always gets colour i).

    Hues step by the golden ratio, so neighbours differ the most; saturation and value alternate
    over rounds so that large `n` stays distinguishable.

    Returns:
        uint8 (n, 3) RGB.
    """
    colors = np.empty((n, 3), dtype=np.uint8)
    for i in range(n):
        hue = (i * _GOLDEN) % 1.0
        saturation = (0.95, 0.6, 0.95)[(i // 8) % 3]
        value = (1.0, 1.0, 0.75)[(i // 8) % 3]
        rgb = colorsys.hsv_to_rgb(hue, saturation, value)
        colors[i] = [round(c * 255) for c in rgb]
    return colors


def default_radius(width: int, height: int) -> int:
    """Marker radius in pixels for a (width, height) image: 1 % of the shorter side, at least 5."""
    return max(5, round(0.01 * min(width, height)))


def _fixed(x: float, y: float) -> tuple[int, int]:
    """(x, y) with pixel centres at +0.5 -> OpenCV fixed-point coordinates for `shift=_SHIFT`."""
    return (round((x - 0.5) * _ONE), round((y - 0.5) * _ONE))


def _drawable(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """bool (...,): points that are finite and at most one frame size outside the frame.

    Farther points would be off-screen anyway, and OpenCV's fixed-point coordinates overflow (int32) for
    values like 1e9 ("Can't parse 'pt2'"), so they are not drawn.
    """
    xy = np.asarray(points, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        inside = ((xy[..., 0] >= -width) & (xy[..., 0] <= 2 * width)
                  & (xy[..., 1] >= -height) & (xy[..., 1] <= 2 * height))
    return np.isfinite(xy).all(axis=-1) & inside


def _color(rgb: np.ndarray | Sequence[int]) -> tuple[int, int, int]:
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))


def draw_marker(
    image: np.ndarray, xy: Sequence[float], rgb: Sequence[int], radius: int, filled: bool = True
) -> None:
    """Draw one marker in place: a filled disc, or a ring that leaves the point's own pixel untouched.

    Args:
        image: uint8 (H, W, 3) RGB, modified in place.
        xy: (x, y) in pixels, centres at +0.5.
        rgb: colour.
        radius: disc radius in pixels (>= 5 keeps a ring's centre pixel untouched at any sub-pixel
            position).
        filled: disc (True) or ring (False). Both get a thin black outline for contrast.
    """
    center = _fixed(float(xy[0]), float(xy[1]))
    r = radius * _ONE
    if filled:
        cv2.circle(image, center, r + _ONE, _OUTLINE_RGB, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, center, r, _color(rgb), -1, cv2.LINE_AA, _SHIFT)
    else:
        ring = max(1, radius // 4)
        cv2.circle(image, center, r, _OUTLINE_RGB, ring + 2, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, center, r, _color(rgb), ring, cv2.LINE_AA, _SHIFT)


def draw_label_marker(image: np.ndarray, xy: Sequence[float], rgb: Sequence[int], radius: int) -> None:
    """Draw a labelled point's marker in place: a filled square (half-side `radius`) with a thin black outline,
    so that a frame where the user placed the point reads apart from the tracked frames' discs."""
    x, y = _fixed(float(xy[0]), float(xy[1]))
    r = radius * _ONE
    cv2.rectangle(image, (x - r - _ONE, y - r - _ONE), (x + r + _ONE, y + r + _ONE), _OUTLINE_RGB, -1,
                  cv2.LINE_AA, _SHIFT)
    cv2.rectangle(image, (x - r, y - r), (x + r, y + r), _color(rgb), -1, cv2.LINE_AA, _SHIFT)


def _draw_label(image: np.ndarray, text: str, xy: Sequence[float], rgb: Sequence[int], radius: int) -> None:
    """Write `text` up and to the right of a marker, coloured with a black outline."""
    scale = max(0.3, radius / 12)
    org = (int(round(xy[0] + radius + 1)), int(round(xy[1] - radius - 1)))
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _OUTLINE_RGB, 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _color(rgb), 1, cv2.LINE_AA)


def blend_heatmap(
    frame: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.5,
    normalize: bool = True,
    colormap: int = cv2.COLORMAP_JET,
) -> np.ndarray:
    """Overlay a heat map on a frame.

    Args:
        frame: uint8 (H, W, 3) RGB.
        heat: float (h, w), any size: resized bilinearly (half-pixel centres) to (H, W).
        alpha: weight of the coloured heat map, in [0, 1].
        normalize: map heat's [min, max] to [0, 1] (a constant map becomes 0); if False, heat must
            already be in [0, 1] and is clipped to it. NaNs count as 0.
        colormap: an OpenCV colormap id.

    Returns:
        uint8 (H, W, 3) RGB, a new array.
    """
    frame = check_image(frame, "frame")
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if heat.ndim != 2 or heat.size == 0:
        raise InputError(f"heat map must be a non-empty (h, w) array; got shape {heat.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"heat map alpha {alpha} is out of range [0, 1]")
    if normalize:
        lo, hi = float(heat.min()), float(heat.max())
        heat = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    heat = np.clip(heat, 0.0, 1.0)
    h, w = frame.shape[:2]
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), colormap)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(frame, 1.0 - alpha, colored, alpha, 0.0)


@dataclass(frozen=True)
class RenderStyle:
    """How tracks are drawn (`draw_tracks`, `render_video`): one object for the options both take.

    Attributes:
        trail: rows of trail behind each marker (segments between consecutive rows of the last `trail` rows
            where the point is visible at both ends); 0 for none.
        radius: marker radius in pixels; None: `default_radius(W, H)` of the frame.
        show_ids: write each point's index next to its marker.
        heatmap_alpha: the weight of a heat map blended under the drawing (`blend_heatmap`).
    """

    trail: int = 10
    radius: int | None = None
    show_ids: bool = True
    heatmap_alpha: float = 0.5


def draw_tracks(
    frame: np.ndarray,
    tracks: Tracks,
    row: int,
    style: RenderStyle | None = None,
    *,
    heatmap: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> np.ndarray:
    """Draw one row of `tracks` on a frame.

    Layers, bottom to top: the heat map; trails (segments between consecutive rows of the last
    `style.trail` rows where the point is visible at both ends); markers (a filled square on the point's labelled
    frames (`Tracks.labelled_at`), a filled disc where tracked and visible, a ring where not); point ids. Points
    with non-finite coordinates, or more than one frame size outside the frame, are skipped.

    Args:
        frame: uint8 (H, W, 3) RGB of the video the tracks were made on ((W, H) == tracks.size).
        tracks: the tracks.
        row: index into tracks' rows (not a video frame index; see `Tracks.rows_for_frames`).
        style: trail, marker radius, point ids, heat map weight (`RenderStyle`; None: its defaults).
        heatmap: optional float (h, w) map blended under the drawing (`blend_heatmap`).
        colors: uint8 (N, 3) RGB per point; default `point_colors(N)`.

    Returns:
        uint8 (H, W, 3) RGB, a new array.
    """
    style = style or RenderStyle()
    frame = check_image(frame, "frame")
    h, w = frame.shape[:2]
    if tracks.size != (w, h):
        raise InputError(
            f"tracks are for a {tracks.size[0]}x{tracks.size[1]} video but the frame is {w}x{h}"
        )
    if not 0 <= row < tracks.num_frames:
        raise InputError(f"tracks row {row} is out of range 0..{tracks.num_frames - 1}")
    if style.trail < 0:
        raise InputError(f"trail {style.trail} is invalid: it must be >= 0")
    n = tracks.num_points
    colors = point_colors(n) if colors is None else np.asarray(colors, dtype=np.uint8).reshape(n, 3)
    radius = default_radius(w, h) if style.radius is None else int(style.radius)
    out = blend_heatmap(frame, heatmap, style.heatmap_alpha) if heatmap is not None else frame.copy()
    _draw_trails(out, tracks, row, style.trail, colors, radius)
    _draw_markers(out, tracks, row, colors, radius, style.show_ids)
    return out


def _draw_trails(out: np.ndarray, tracks: Tracks, row: int, trail: int, colors: np.ndarray, radius: int) -> None:
    """The trails of `draw_tracks`, in place: rows row - trail .. row, segments where visible at both ends."""
    h, w = out.shape[:2]
    first = max(0, row - trail)
    if row > first:
        pts = tracks.points[first : row + 1]
        ok = tracks.visible[first : row + 1] & _drawable(pts, w, h)
        line_width = max(1, radius // 2)
        for r in range(1, len(pts)):
            for i in np.flatnonzero(ok[r - 1] & ok[r]).tolist():
                cv2.line(
                    out, _fixed(*pts[r - 1, i]), _fixed(*pts[r, i]), _color(colors[i]),
                    line_width, cv2.LINE_AA, _SHIFT,
                )


def _draw_markers(out: np.ndarray, tracks: Tracks, row: int, colors: np.ndarray, radius: int,
                  show_ids: bool) -> None:
    """The markers (and ids) of `draw_tracks` on row `row`, in place."""
    h, w = out.shape[:2]
    points, visible = tracks.points[row], tracks.visible[row]
    finite = _drawable(points, w, h)
    # Hollow markers first so that a visible point is never hidden under an occluded one's ring.
    for i in np.flatnonzero(finite & ~visible).tolist():
        draw_marker(out, points[i], colors[i], radius, filled=False)
    labelled = tracks.labelled_at(row)
    for i in np.flatnonzero(finite & visible & ~labelled).tolist():
        draw_marker(out, points[i], colors[i], radius, filled=True)
    for i in np.flatnonzero(finite & labelled).tolist():
        draw_label_marker(out, points[i], colors[i], radius)
    if show_ids:
        for i in np.flatnonzero(finite).tolist():
            _draw_label(out, str(i), points[i], colors[i], radius)


@dataclass(frozen=True)
class RenderedVideo:
    """What `render_video` wrote.

    Attributes:
        path: the output file.
        num_frames: frames written (all of the input's).
        fps: frames per second (the input's).
        size: (W, H) of the frames (the input's).
        encoded_size: (W, H) in the file: `size` rounded up to even numbers, the input in its
            top-left corner (an odd side is padded by repeating the last column/row; see
            `vidcorr.video.VideoWriter`), so track coordinates hold in the file unchanged.
        codec: 'h264' (yuv420p) for .mp4, or 'mp4v' where no H.264 encoder is installed.
        warning: None, or one line for the caller to show (the mp4v fallback).
    """

    path: Path
    num_frames: int
    fps: float
    size: tuple[int, int]
    encoded_size: tuple[int, int]
    codec: str
    warning: str | None = None


def _heatmap_for_row(heatmaps: HeatmapSource, row: int) -> np.ndarray | None:
    heat = heatmaps(row) if callable(heatmaps) else heatmaps[row]
    if heat is None:
        return None
    heat = np.asarray(heat, dtype=np.float32)
    return heat.max(axis=0) if heat.ndim == 3 else heat  # (N, h, w): one map for all points


def render_video(
    video: VideoReader | str | os.PathLike,
    tracks: Tracks,
    out_path: str | os.PathLike,
    style: RenderStyle | None = None,
    heatmaps: HeatmapSource | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    codec: str | None = None,
    batch_size: int = 16,
) -> RenderedVideo:
    """Write every frame of `video` with `tracks` drawn on it, at the video's size, frame rate and pixel aspect
    ratio (H.264: a source with non-square pixels plays with its shape).

    A frame shows the tracks row chosen by `Tracks.rows_for_frames` (the nearest earlier tracked
    frame, nothing before the first or more than one stride after the last). Frames are streamed,
    and the file appears at `out_path` only once complete.

    Args:
        video: a `VideoReader` or a video path (opened with `open_video`).
        tracks: tracks made on this video (tracks.size == the video's (W, H)).
        out_path: output video (.mp4: H.264 yuv420p through PyAV; MPEG-4 part 2 with a warning
            where no H.264 encoder is installed).
        style: trail (rows behind each marker), marker radius (default from the frame size), point ids, heat
            map weight (`RenderStyle`; None: its defaults).
        heatmaps: per tracks row, a float (h, w) map or (N, h, w) maps (max over points is shown):
            an array (T, h, w) / (T, N, h, w), a sequence of length T, or a function of the row
            returning a map or None.
        progress: called as progress(frames_done, total_frames) after each batch.
        codec: 'h264' or an OpenCV FourCC instead of the default for out_path's suffix.
        batch_size: frames decoded at a time.

    Returns:
        A `RenderedVideo` describing the file.

    Raises:
        InputError: unreadable video, tracks made for another size or for frames the video lacks.
    """
    reader = open_video(video)
    try:
        info = reader.info
        _check_renderable(reader, tracks, heatmaps)
        with VideoWriter(out_path, fps=info.fps, size=info.size, codec=codec,
                         sample_aspect_ratio=info.sample_aspect_ratio) as writer:
            _draw_frames(reader, tracks, writer, style or RenderStyle(), heatmaps, progress, batch_size)
        try:  # OpenCV's writer reports no failure (a full disk leaves a short file): read it back
            verify_written_video(out_path, writer.frames_written)
        except OSError:
            Path(out_path).unlink(missing_ok=True)
            raise
        return RenderedVideo(
            path=Path(out_path),
            num_frames=writer.frames_written,
            fps=info.fps,
            size=info.size,
            encoded_size=writer.encoded_size,
            codec=writer.codec,
            warning=writer.warning,
        )
    finally:
        if reader is not video:  # opened here from a path: ours to close
            reader.close()


def _check_renderable(reader: VideoReader, tracks: Tracks, heatmaps: HeatmapSource | None) -> None:
    """InputError unless `tracks` (and `heatmaps`) fit the video: its size, its frames, one map per row."""
    info = reader.info
    if tracks.size != info.size:
        raise InputError(
            f"tracks are for a {tracks.size[0]}x{tracks.size[1]} video but {reader.name} is "
            f"{info.width}x{info.height}"
        )
    if tracks.num_frames and tracks.frame_indices[-1] >= info.num_frames:
        raise InputError(
            f"tracks reach frame {int(tracks.frame_indices[-1])} but {reader.name} has {info.num_frames} frames"
        )
    if heatmaps is not None and not callable(heatmaps) and len(heatmaps) != tracks.num_frames:
        raise InputError(f"got {len(heatmaps)} heat maps for {tracks.num_frames} tracks rows")


def _draw_frames(reader: VideoReader, tracks: Tracks, writer: VideoWriter, style: RenderStyle,
                 heatmaps: HeatmapSource | None, progress: Callable[[int, int], None] | None,
                 batch_size: int) -> None:
    """Decode every frame of `reader` once, draw its tracks row (if any) and write it."""
    colors = point_colors(tracks.num_points)
    num_frames = reader.info.num_frames
    heat_row, heat = -1, None  # a row shown on several frames (a stride) fetches its map once
    for indices, frames in reader.iter_frames(batch_size=batch_size):
        for frame, row in zip(frames, tracks.rows_for_frames(indices).tolist(), strict=True):
            if row >= 0:
                if heatmaps is not None and row != heat_row:
                    heat_row, heat = row, _heatmap_for_row(heatmaps, row)
                frame = draw_tracks(frame, tracks, row, style, heatmap=heat, colors=colors)
            writer.write(frame)
        if progress is not None:
            progress(writer.frames_written, num_frames)


def side_by_side(
    src: np.ndarray,
    trg: np.ndarray,
    src_pts: np.ndarray,
    trg_pts: np.ndarray,
    colors: np.ndarray | None = None,
    correct: np.ndarray | None = None,
    radius: int | None = None,
    line_width: int | None = None,
) -> np.ndarray:
    """Source and target images side by side, with a line from each source point to its target point.

    The source is at the left, the target at the right, both top-aligned on black. Point i is
    drawn in colors[i], or, when `correct` is given, in green where correct[i] and red where not.
    Pairs with a non-finite coordinate (a missing keypoint) are skipped.

    Args:
        src: uint8 (H1, W1, 3) RGB.
        trg: uint8 (H2, W2, 3) RGB.
        src_pts: float (N, 2) x, y in src's pixels (centres at +0.5).
        trg_pts: float (N, 2) x, y in trg's pixels.
        colors: uint8 (N, 3) RGB; default `point_colors(N)`.
        correct: bool (N,), e.g. a PCK verdict per point.
        radius: marker radius in pixels; default from the larger image.
        line_width: line thickness in pixels; default max(1, radius // 2).

    Returns:
        uint8 (max(H1, H2), W1 + W2, 3) RGB.
    """
    src, trg = check_image(src, "source image"), check_image(trg, "target image")
    src_pts = np.asarray(src_pts, dtype=np.float64)
    trg_pts = np.asarray(trg_pts, dtype=np.float64)
    if src_pts.ndim != 2 or src_pts.shape[1] != 2 or trg_pts.shape != src_pts.shape:
        raise InputError(
            f"source and target points must both be (N, 2); got {src_pts.shape} and {trg_pts.shape}"
        )
    n = len(src_pts)
    if correct is not None:
        correct = np.asarray(correct, dtype=bool)
        if correct.shape != (n,):
            raise InputError(f"correct must be (N,) = ({n},); got shape {correct.shape}")
        colors = np.where(correct[:, None], np.array(CORRECT_RGB), np.array(WRONG_RGB)).astype(np.uint8)
    elif colors is None:
        colors = point_colors(n)
    else:
        colors = np.asarray(colors, dtype=np.uint8)
        if colors.shape != (n, 3):
            raise InputError(f"colors must be (N, 3) = ({n}, 3); got shape {colors.shape}")
    (h1, w1), (h2, w2) = src.shape[:2], trg.shape[:2]
    canvas = np.zeros((max(h1, h2), w1 + w2, 3), dtype=np.uint8)
    canvas[:h1, :w1] = src
    canvas[:h2, w1:] = trg
    radius = default_radius(max(w1, w2), max(h1, h2)) if radius is None else int(radius)
    line_width = max(1, radius // 2) if line_width is None else int(line_width)
    trg_on_canvas = trg_pts + np.array([w1, 0.0])
    ok = np.isfinite(src_pts).all(axis=1) & np.isfinite(trg_pts).all(axis=1)
    for i in np.flatnonzero(ok).tolist():
        cv2.line(
            canvas, _fixed(*src_pts[i]), _fixed(*trg_on_canvas[i]), _color(colors[i]),
            line_width, cv2.LINE_AA, _SHIFT,
        )
    for i in np.flatnonzero(ok).tolist():
        draw_marker(canvas, src_pts[i], colors[i], radius)
        draw_marker(canvas, trg_on_canvas[i], colors[i], radius)
    return canvas
