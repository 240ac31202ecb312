"""Draw a report's :class:`~vidcorr.eval.tables.Figure` (a score against its threshold) as an RGB image.

OpenCV and numpy only (vidcorr has no plotting dependency): a white canvas, a grid, our curves as lines with a
dot per sample, published numbers as hollow markers (one shape per source) in their curve's colour, and the
legend below the plot, where it hides nothing. Text is ASCII (OpenCV's Hershey fonts have no
Greek letters): ``δ`` is written ``delta``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from vidcorr.eval.tables import Figure

PLOT_WIDTH, PLOT_HEIGHT = 720, 400
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP = 70, 30, 58
_LEGEND_ROW = 20
_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
"""RGB, one per series (the usual categorical palette)."""
_SHAPES = ("circle", "square", "triangle", "diamond", "cross")
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_GRID = (225, 225, 225)


def ascii_text(text: str) -> str:
    """`text` as OpenCV can draw it: Greek letters spelled out, other non-ASCII characters as ``?``."""
    for letter, name in (("δ", "delta"), ("α", "alpha"), ("×", "x"), ("–", "-")):
        text = text.replace(letter, name)
    return text.encode("ascii", "replace").decode("ascii")


def _put(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour: tuple = _INK,
         align: str = "left") -> None:
    text = ascii_text(text)
    (width, height), _ = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = org
    if align == "center":
        x -= width // 2
    elif align == "right":
        x -= width
    cv2.putText(canvas, text, (int(x), int(y + height // 2)), _FONT, scale, colour, 1, cv2.LINE_AA)


def _marker(canvas: np.ndarray, shape: str, centre: tuple[int, int], colour: tuple, radius: int = 6) -> None:
    x, y = centre
    if shape == "circle":
        cv2.circle(canvas, centre, radius, colour, 2, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(canvas, (x - radius, y - radius), (x + radius, y + radius), colour, 2, cv2.LINE_AA)
    elif shape == "triangle":
        points = np.array([(x, y - radius - 1), (x - radius, y + radius - 1), (x + radius, y + radius - 1)], np.int32)
        cv2.polylines(canvas, [points], True, colour, 2, cv2.LINE_AA)
    elif shape == "diamond":
        reach = radius + 1
        points = np.array([(x, y - reach), (x + reach, y), (x, y + reach), (x - reach, y)], np.int32)
        cv2.polylines(canvas, [points], True, colour, 2, cv2.LINE_AA)
    else:
        cv2.line(canvas, (x - radius, y - radius), (x + radius, y + radius), colour, 2, cv2.LINE_AA)
        cv2.line(canvas, (x - radius, y + radius), (x + radius, y - radius), colour, 2, cv2.LINE_AA)


def _x_mapping(figure: Figure, left: int, right: int) -> Callable[[float], int]:
    xs = [x for s in figure.series for x in s.xs] + list(figure.x_ticks) + [a.x for a in figure.anchors
                                                                            if a.x is not None]
    scale = (lambda v: math.log2(v)) if figure.log_x else (lambda v: v)
    lo, hi = scale(min(xs)), scale(max(xs))
    span = hi - lo or 1.0
    return lambda v: int(round(left + (scale(v) - lo) / span * (right - left)))


def _legend_entries(figure: Figure) -> tuple[list[tuple[str, str | None, tuple]], dict[str, str]]:
    """(label, marker shape or None for a line, colour) per series and per published source; label -> shape."""
    labels = dict.fromkeys(a.label for a in figure.anchors)
    shapes = {label: _SHAPES[i % len(_SHAPES)] for i, label in enumerate(labels)}
    colours = {a.label: _COLOURS[a.series % len(_COLOURS)] for a in figure.anchors}
    entries: list[tuple[str, str | None, tuple]] = [
        (s.label, None, _COLOURS[i % len(_COLOURS)]) for i, s in enumerate(figure.series)]
    return entries + [(label, shape, colours[label]) for label, shape in shapes.items()], shapes


def draw_figure(figure: Figure, plot_wh: tuple[int, int] = (PLOT_WIDTH, PLOT_HEIGHT)) -> np.ndarray:
    """uint8 (H, W, 3) RGB: `figure` drawn (see the module docstring), the plot `plot_wh` pixels, y from 0 to 100
    percent, the legend below it."""
    entries, shapes = _legend_entries(figure)
    width = plot_wh[0] + _MARGIN_LEFT + _MARGIN_RIGHT
    legend_top = _MARGIN_TOP + plot_wh[1] + 52
    height = legend_top + _LEGEND_ROW * len(entries) + 12
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right = _MARGIN_LEFT, width - _MARGIN_RIGHT
    top, bottom = _MARGIN_TOP, _MARGIN_TOP + plot_wh[1]
    to_x = _x_mapping(figure, left, right)

    def to_y(v: float) -> int:
        return int(round(bottom - v / 100.0 * (bottom - top)))

    _put(canvas, figure.title, (width // 2, 16), 0.55, align="center")
    _put(canvas, figure.y_label, (8, top - 18), 0.45)
    for value in range(0, 101, 10):
        cv2.line(canvas, (left, to_y(value)), (right, to_y(value)), _GRID, 1)
        _put(canvas, str(value), (left - 8, to_y(value)), align="right")
    for tick in figure.x_ticks:
        cv2.line(canvas, (to_x(tick), top), (to_x(tick), bottom), _GRID, 1)
        _put(canvas, f"{tick:g}", (to_x(tick), bottom + 14), align="center")
    cv2.rectangle(canvas, (left, top), (right, bottom), _INK, 1)
    _put(canvas, figure.x_label, ((left + right) // 2, bottom + 36), 0.5, align="center")

    for index, series in reversed(list(enumerate(figure.series))):  # the first series drawn last, on top
        colour = _COLOURS[index % len(_COLOURS)]
        points = [(to_x(x), to_y(y)) for x, y in zip(series.xs, series.ys, strict=True) if math.isfinite(y)]
        if len(points) > 1:
            cv2.polylines(canvas, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        for point in points:
            cv2.circle(canvas, point, 3, colour, -1, cv2.LINE_AA)
    for anchor in figure.anchors:
        colour = _COLOURS[anchor.series % len(_COLOURS)]
        if anchor.x is None:  # over the whole axis: dashed, its marker at the right end
            for start in range(left, right - 6, 14):
                cv2.line(canvas, (start, to_y(anchor.value)), (start + 7, to_y(anchor.value)), colour, 1, cv2.LINE_AA)
            _marker(canvas, shapes[anchor.label], (right - 10, to_y(anchor.value)), colour)
        else:
            _marker(canvas, shapes[anchor.label], (to_x(anchor.x), to_y(anchor.value)), colour)

    for row, (label, shape, colour) in enumerate(entries):
        y = legend_top + _LEGEND_ROW * row
        if shape is None:
            cv2.line(canvas, (left, y), (left + 24, y), colour, 2, cv2.LINE_AA)
            cv2.circle(canvas, (left + 12, y), 3, colour, -1, cv2.LINE_AA)
        else:
            _marker(canvas, shape, (left + 12, y), colour, 5)
        _put(canvas, label, (left + 34, y), 0.45)
    return canvas
