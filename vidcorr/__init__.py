"""vidcorr: keypoint correspondence and tracking with Stable Diffusion cross-attention.

The method of "Unsupervised Semantic Correspondence Using Stable Diffusion" (Hedlin et al., 2023):
optimize one text embedding per point so its cross-attention map peaks on the point, then find where
the same embedding's attention peaks on other images or frames.
"""

from .config import PRESET_NOTES, PRESETS, Config
from .embeddings import Embeddings
from .errors import EmbeddingsMismatchError, InputError, ModelLoadError, VidcorrError
from .fit import fit, fit_reference
from .locate import Location, locate, locate_reference
from .model import DEFAULT_MODEL, LDM
from .track import fit_queries, track
from .tracks import Tracks

__all__ = [
    "Config", "PRESETS", "PRESET_NOTES", "Embeddings", "LDM", "DEFAULT_MODEL", "Location",
    "fit", "fit_reference", "locate", "locate_reference", "track", "fit_queries", "Tracks",
    "VidcorrError", "InputError", "ModelLoadError", "EmbeddingsMismatchError",
]
__version__ = "0.1.0"
