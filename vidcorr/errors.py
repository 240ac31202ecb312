"""Errors a user can cause and fix: the CLI prints their message as one line and exits non-zero.

Everything else (a bug, an invariant broken) is left as an ordinary exception with its traceback.
"""

from __future__ import annotations


class VidcorrError(Exception):
    """Base class: the message is one line, names the problem and, where there is one, the fix."""

    exit_code = 2


class InputError(VidcorrError, ValueError):
    """Bad user input: a malformed point list, a point outside the image, an unreadable file."""


class ModelLoadError(VidcorrError):
    """The diffusion weights cannot be had (offline, unknown id, gated repository, bad folder)."""


class EmbeddingsMismatchError(VidcorrError):
    """Embeddings fitted with another model, layer set, heads rule or image size."""


class DataError(VidcorrError):
    """A benchmark file is missing or malformed; the message names the file and what was expected."""
