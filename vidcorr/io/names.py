"""The names of what vidcorr writes, in one place.

Every writer, reader and check takes its file names from here: a renamed output is renamed everywhere at
once, including the list that lets ``--overwrite`` replace only folders that vidcorr wrote.
"""

from __future__ import annotations

import re

TRACKS_STEM = "tracks"
TRACKS_NPZ = f"{TRACKS_STEM}.npz"
TRACKS_CSV = f"{TRACKS_STEM}.csv"
TRACKS_JSON = f"{TRACKS_STEM}.json"
EMBEDDINGS = "embeddings.safetensors"
ANNOTATED_VIDEO = "annotated.mp4"
KEYFRAMES_DIR = "keyframes"
MATCHES_JSON = "matches.json"
MATCHES_CSV = "matches.csv"
MATCHES_IMAGE = "matches.jpg"
VIS_DIR = "vis"
PAGE = "index.html"
"""The viewer's (and review page's) page, written into the folder it shows."""
REVIEW_PAGE = "review.html"
"""The review page (``vidcorr review``), written into the track output (or batch folder) it reviews."""
REVIEW_DIR = "review"
"""The review page's pictures, beside it."""
REVIEW_INDEX = "review.json"
"""What marks a pictures folder as the review page's (it may then be replaced): the videos it holds."""
VIEW_INDEX = "index.json"
"""The index the viewer reads: of pairs (``vis/index.json``) or of key frames (``keyframes/index.json``)."""
RUN_FILE = "run.json"
"""A run folder's identity (eval, TAP-Vid, JHMDB, batches)."""
BATCH_INDEX = "batch.json"
"""A batch's list of videos, their status and output folders."""

RUN_ENTRIES = frozenset({
    TRACKS_NPZ, TRACKS_CSV, TRACKS_JSON, EMBEDDINGS, ANNOTATED_VIDEO, KEYFRAMES_DIR,
    MATCHES_JSON, MATCHES_CSV, MATCHES_IMAGE, VIS_DIR, PAGE, REVIEW_PAGE, REVIEW_DIR,
})
"""Names a vidcorr run writes into its output folder: a non-empty folder is replaced (overwrite) only if it
holds at least one of them, so a mistyped --out cannot delete someone's home folder."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str = "item") -> str:
    """`text` as a file or folder name that is safe everywhere: each run of characters other than letters,
    digits, ``.``, ``_`` and ``-`` becomes one ``_``; no leading or trailing ``_``, no leading dots or dashes
    (never ``..`` or a hidden file); `fallback` if nothing is left."""
    name = _UNSAFE.sub("_", text).lstrip("._-").rstrip("_")
    return name or fallback
