"""The points options shared by commands: their Typer declarations, and `PointsArgs`, what a command was given
(the points themselves, typed or in files, are read by ``vidcorr.io.points``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from vidcorr.io.points import PointLabels, video_labels
from vidcorr.io.reader import VideoInfo

MaskOpt = Annotated[Path | None, typer.Option(
    "--mask", help="With --grid: a binary or palette (indexed, e.g. DAVIS) PNG of the reference frame; the grid's "
    "points inside it are the queries (CoTracker's segm_mask rule).")]
MaskIdOpt = Annotated[int | None, typer.Option(
    "--mask-id", min=1, help="The object label to keep in a palette --mask \\[default: every non-zero label].")]
FpsOpt = Annotated[float | None, typer.Option(
    "--fps", help="Frame rate of a folder of frames \\[default: 30]; a video file has its own.")]


@dataclass(frozen=True)
class PointsArgs:
    """The points options of `vidcorr track` as given (None where not given)."""

    points: str | None
    points_file: Path | None
    grid: int | None
    ref_frame: int
    mask: Path | None
    mask_id: int | None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.points, self.points_file, self.grid, self.mask))

    def labels(self, info: VideoInfo) -> PointLabels:
        """The points' labels on a video with `info` (checked against it)."""
        return video_labels(self.points, self.points_file, self.grid, self.ref_frame, info.num_frames, info.size,
                             self.mask, self.mask_id)
