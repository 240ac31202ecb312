"""What the self-contained pages (``vidcorr view``, ``vidcorr pick``, ``vidcorr review``) share: their package
data files, the helpers of their scripts, the JSON block that carries their data, the Content-Security-Policy
that admits only their own script and style, the points' colours and the pictures' encoding.

Each page is an HTML skeleton ``assets/<name>.html`` with ``@CSP@``, ``@STYLE@``, ``@SCRIPT@`` and ``@DATA@``
placeholders, filled from ``assets/<name>.css``, the script (``assets/common.js``, the helpers every page's
script uses as ``VC``, then ``assets/<name>.js``) and the data. Strings from files reach a page only inside a
``<script type="application/json">`` block (see :func:`embed_json`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import re
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

from vidcorr.io.render import point_colors

PALETTE_SIZE = 1024
"""Colours embedded in a page (point i beyond them reuses colour i mod PALETTE_SIZE)."""
JPEG_QUALITY = 85
SHARED_SCRIPT = "common.js"
"""The helpers every page's script uses (``VC``), inlined before it."""


@functools.cache
def page_asset(name: str) -> str:
    """The text of the package data file ``vidcorr/web/assets/<name>`` (e.g. ``view.js``, ``pick.html``)."""
    return (resources.files("vidcorr.web") / "assets" / name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element: no ``<``, ``>`` or ``&`` (so no
    ``</script>`` or ``<!--``), and no U+2028/U+2029."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def csp_hash(text: str) -> str:
    """The CSP source expression (``sha256-...``) that admits exactly this inline script or style."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def fill_page(name: str, data: Any, *, img_src: str, media_src: str | None = None) -> str:
    """The page ``assets/<name>.html`` with its style, script and `data` inlined, under a policy that allows
    its own script and style (by hash), images from `img_src` and media from `media_src` (none if None),
    and nothing else: no network, no forms, no base URL."""
    script, style = page_asset(SHARED_SCRIPT) + "\n" + page_asset(f"{name}.js"), page_asset(f"{name}.css")
    media = f"media-src {media_src}; " if media_src else ""
    csp = (f"default-src 'none'; script-src '{csp_hash(script)}'; style-src '{csp_hash(style)}'; "
           f"img-src {img_src}; {media}base-uri 'none'; form-action 'none'")
    replacements = {"@CSP@": csp, "@STYLE@": style, "@SCRIPT@": script, "@DATA@": embed_json(data)}
    return re.sub("|".join(map(re.escape, replacements)), lambda m: replacements[m.group(0)],
                  page_asset(f"{name}.html"))


def palette_hex(n: int = PALETTE_SIZE) -> list[str]:
    """The first `n` colours of `vidcorr.io.render.point_colors` as ``#rrggbb``: point i on a page is drawn in
    the colour the annotated video gives track i."""
    return ["#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb)) for rgb in point_colors(n)]


def jpeg_bytes(image: np.ndarray, max_side: int, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes, shrunk (area filter) so that the longer side is at most `max_side`
    pixels; never enlarged."""
    picture = Image.fromarray(np.ascontiguousarray(image))
    scale = max_side / max(picture.size)
    if scale < 1:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
