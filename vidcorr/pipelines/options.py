"""The options of a track run, as one object (no torch: the CLI builds it before any model work)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vidcorr import memory
from vidcorr.config import DEFAULT_VISIBILITY_THRESHOLD, Config
from vidcorr.errors import InputError
from vidcorr.memory import ModelSize
from vidcorr.web.visuals import DEFAULT_KEY_FRAMES


@dataclass(frozen=True)
class TrackOptions:
    """What a track run does beside its points, config and model: which frames, what is visible, which outputs.

    One object for the CLI, :func:`prepare_track`, ``prepare_batch`` and :class:`TrackJob`.

    Attributes:
        start, end, stride: which frames are tracked (as :func:`vidcorr.track` takes them).
        visibility_threshold: visible = confidence >= this.
        video_out: write ``annotated.mp4``; trail: its trail length (rows); heatmap: the point whose attention
            map it blends in (None for none).
        keyframes: key frames saved for ``vidcorr view`` (evenly spaced, plus the query frames); 0 for none.
        fps: the frame rate of a folder of frames (None: 30); a video file has its own.
        same_video: with embeddings, whether they were fitted on this video (True: anchor on their labelled
            frames; False: search every point globally, as for another video); None decides from the content
            (`Embeddings.fitted_on`: the labelled frames' pixels, recorded at fit time).
    """

    start: int = 0
    end: int | None = None
    stride: int = 1
    visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD
    video_out: bool = True
    trail: int = 10
    heatmap: int | None = None
    keyframes: int = DEFAULT_KEY_FRAMES
    fps: float | None = None
    same_video: bool | None = None

    def check_memory(self, num_points: int, num_frames: int, cfg: Config, sizes: ModelSize, *, fit: bool,
                     labels: int = 1, query_frames: int = 1, device_available: float | None = None,
                     video: str | None = None) -> None:
        """Refuse, in one line with the estimate, a run of these options whose points, frames and outputs cannot
        fit in memory (`vidcorr.memory.track_need`).

        Args:
            num_points, num_frames: N points tracked over T frames. cfg, sizes: the config and the model's sizes
                (before it loads, `memory.model_floor` of its name). fit: the embeddings are fitted in the run.
            labels: the most labels a point has. query_frames: the labelled frames (the viewer keeps their maps).
            device_available: the model's device's free memory where it is not the host's.
            video: the video, named in the message (a batch's largest).
        """
        key_frames = min(self.keyframes, num_frames) + query_frames if self.keyframes else 0
        need = memory.track_need(num_points, num_frames, cfg, sizes, fit=fit, key_frames=key_frames,
                                 maps=self.heatmap is not None, labels=labels)
        advice = "track fewer points (a smaller --grid, or the points split over several runs)"
        if self.keyframes:
            advice += ", or without key frames for the viewer (--keyframes 0)"
        where = "" if video is None else f" of {video}"
        memory.check_memory(need, f"tracking {memory.points_text(num_points)} on {num_frames} frames{where}", advice,
                            device_available=device_available)

    def check_same_video(self, with_embeddings: bool) -> None:
        """Refuse `same_video` without embeddings (points fitted in the run are on its video)."""
        if self.same_video is not None and not with_embeddings:
            raise InputError("--same-video and --other-video apply to --embeddings (points fitted here are on this "
                             "video)")

    @classmethod
    def split(cls, options: Mapping[str, Any]) -> tuple[TrackOptions, dict[str, Any]]:
        """(the TrackOptions among `options`, the rest): for keyword APIs that take both."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names}), \
            {k: v for k, v in options.items() if k not in names}
