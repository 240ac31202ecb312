"""vidcorr: keypoint correspondence and tracking with Stable Diffusion cross-attention.

The method of "Unsupervised Semantic Correspondence Using Stable Diffusion" (Hedlin et al., 2023):
optimize one text embedding per point so its cross-attention map peaks on the point, then find where
the same embedding's attention peaks on other images or frames.

Importing the package is cheap: the public names below are resolved on first use (module
``__getattr__``), so a numpy-only user (``vidcorr.tracks``, ``vidcorr.render``, the reports) never
pays for torch and diffusers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vidcorr._version import __version__ as __version__

_EXPORTS: dict[str, str] = {
    "Config": "config", "PRESETS": "config", "PRESET_NOTES": "config", "DEFAULT_MODEL": "config",
    "VidcorrError": "errors", "InputError": "errors", "ModelLoadError": "errors",
    "EmbeddingsMismatchError": "errors",
    "Embeddings": "method.embeddings",
    "fit": "method.fit", "fit_reference": "method.fit", "fit_labels": "method.fit", "PointLabels": "io.points",
    "Location": "method.locate", "locate": "method.locate", "locate_reference": "method.locate",
    "LDM": "method.model",
    "fit_queries": "method.track", "track": "method.track",
    "Tracks": "io.tracks",
    "rank_frames": "io.ranking", "FrameRanking": "io.ranking", "refit_changed": "method.reuse",
    "track_many": "pipelines.batch", "BatchOutcome": "pipelines.batch",
    "match": "pipelines.match", "MatchResult": "pipelines.match",
    "track_to_folder": "pipelines.track", "TrackResult": "pipelines.track",
}
"""Public name -> the submodule (of this package) that defines it."""

__all__ = [
    "DEFAULT_MODEL", "LDM", "PRESETS", "PRESET_NOTES", "Config", "Embeddings", "EmbeddingsMismatchError", "InputError",
    "Location", "MatchResult", "ModelLoadError", "PointLabels", "TrackResult", "Tracks", "VidcorrError", "fit",
    "fit_labels", "fit_queries", "fit_reference", "locate", "locate_reference", "match", "track", "track_many",
    "track_to_folder", "BatchOutcome", "FrameRanking", "rank_frames", "refit_changed",
]

if TYPE_CHECKING:
    from vidcorr.config import DEFAULT_MODEL, PRESET_NOTES, PRESETS, Config
    from vidcorr.errors import EmbeddingsMismatchError, InputError, ModelLoadError, VidcorrError
    from vidcorr.io.points import PointLabels
    from vidcorr.io.ranking import FrameRanking, rank_frames
    from vidcorr.io.tracks import Tracks
    from vidcorr.method.embeddings import Embeddings
    from vidcorr.method.fit import fit, fit_labels, fit_reference
    from vidcorr.method.locate import Location, locate, locate_reference
    from vidcorr.method.model import LDM
    from vidcorr.method.reuse import refit_changed
    from vidcorr.method.track import fit_queries, track
    from vidcorr.pipelines.batch import BatchOutcome, track_many
    from vidcorr.pipelines.match import MatchResult, match
    from vidcorr.pipelines.track import TrackResult, track_to_folder


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidcorr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vidcorr.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
