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
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Config": "config", "PRESETS": "config", "PRESET_NOTES": "config",
    "Embeddings": "embeddings",
    "VidcorrError": "errors", "InputError": "errors", "ModelLoadError": "errors",
    "EmbeddingsMismatchError": "errors",
    "fit": "fit", "fit_reference": "fit",
    "Location": "locate", "locate": "locate", "locate_reference": "locate",
    "DEFAULT_MODEL": "config", "LDM": "model",
    "fit_queries": "track", "track": "track",
    "Tracks": "tracks",
    "track_many": "batch", "BatchOutcome": "batch",
    "match": "pipelines", "MatchResult": "pipelines", "track_to_folder": "pipelines", "TrackResult": "pipelines",
}
"""Public name -> the submodule (of this package) that defines it."""

__all__ = [
    "DEFAULT_MODEL", "LDM", "PRESETS", "PRESET_NOTES", "Config", "Embeddings", "EmbeddingsMismatchError", "InputError",
    "Location", "MatchResult", "ModelLoadError", "TrackResult", "Tracks", "VidcorrError", "fit", "fit_queries",
    "fit_reference", "locate", "locate_reference", "match", "track", "track_many", "track_to_folder", "BatchOutcome",
]

if TYPE_CHECKING:
    from .batch import BatchOutcome, track_many
    from .config import DEFAULT_MODEL, PRESET_NOTES, PRESETS, Config
    from .embeddings import Embeddings
    from .errors import EmbeddingsMismatchError, InputError, ModelLoadError, VidcorrError
    from .fit import fit, fit_reference
    from .locate import Location, locate, locate_reference
    from .model import LDM
    from .pipelines import MatchResult, TrackResult, match, track_to_folder
    from .track import fit_queries, track
    from .tracks import Tracks


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidcorr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Keeps ``vidcorr.fit``, ``vidcorr.locate``, ``vidcorr.track`` and ``vidcorr.match`` the functions.

    Importing a submodule binds it on its package (``vidcorr.track`` = the module ``vidcorr/track.py``);
    an eager ``from .track import track`` used to rebind the name to the function. Lazily, that binding
    is refused instead: the submodule stays reachable in ``sys.modules`` and the name resolves to the
    function through ``__getattr__``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _EXPORTS:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
