"""How much memory a run needs, estimated before any work, and the one-line refusal when it cannot fit.

What grows with the number of points N is bounded in two ways:

- Work memory is chunked: fit and locate take the points a chunk at a time (:func:`points_per_chunk`, at most
  :data:`CHUNK_BYTES` of per-point buffers: locate's canvases, fit's targets and Adam state), the UNet
  micro-batched within a chunk; the tracks files are written a block of rows at a time.
- What a run must keep whole, it keeps once, and that is what is estimated here: the fitted embeddings
  (N x R x 77 x D float32), the tracks (T x N), and for the viewer the heat maps of the key frames and one frame's
  attention maps. :func:`check_memory` refuses a run whose estimate exceeds the memory available (the machine's,
  under its cgroup limit; a CUDA device's for what lives there), in one line with the estimate, before any work.

The image size counts per point: one point's canvases and one crop through the networks grow with its square,
so an image size whose single point cannot fit is refused the same way.

Nothing here imports torch: pipelines check a run before they load a model, from the model's name
(:func:`model_floor`), and again once it is loaded, from its real sizes (:class:`ModelSize`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidcorr.config import Config
from vidcorr.errors import InputError

FLOAT_BYTES = 4
CHUNK_BYTES = 1 << 30
"""Per-point buffers one chunk of points may hold at once (locate's canvases, fit's targets and Adam state)."""
FIT_SAMPLE_BYTES_SD_512 = 1.0e9
"""One 512 x 512 sample through the SD 1.x UNet (fp32) with gradients: activations kept for the backward pass of
the early-stopped UNet (measured +0.7 GB per sample on a CPU), with margin."""
LOCATE_SAMPLE_BYTES_SD_512 = 0.6e9
"""The same without gradients: the peak transient memory of one sample (locate)."""
HEAT_BYTES = 128 * 128 * 3
"""One point's heat map on one key frame (``web.visuals.HEAT_SIDE`` squared, RGB)."""
TRACK_CELL_BYTES = 2 * 8 + 8 + 2 * 4 + 4 + 1 + 2 * 8 + 8
"""Per (frame, point): the tracker's float64 points and confidence, the float32 tracks kept, their visible flag,
and the checkpoint's copy of the float64 state."""
VIEW_CELL_BYTES = 200
"""Per (frame, point) of the viewer's index, built as Python lists ([x, y], visible, confidence) before writing."""


@dataclass(frozen=True)
class ModelSize:
    """What the memory of a run depends on in its model: the embeddings' width D (``LDM.context_dim``), the
    native image size (``LDM.native_image_size``), the UNet's width relative to SD's 320 channels, and the
    bytes per weight."""

    context_dim: int
    native_image_size: int
    width: float = 1.0
    dtype_bytes: int = 4


TINY_SIZE = ModelSize(32, 64, 0.1)
"""``LDM.tiny()`` (tests/test_memory.py checks it): the smallest model vidcorr runs."""
SD_SIZE = ModelSize(768, 512, 1.0)
"""SD 1.x: the smallest Stable Diffusion (SD 2.x has D = 1024 and 512 or 768 pixels)."""


def model_floor(model: str | None) -> ModelSize:
    """The smallest sizes a model of this name can have, before it is loaded: ``tiny``'s for ``tiny`` (and for
    None: unknown), else SD 1.x's (every Stable Diffusion is at least that large)."""
    return TINY_SIZE if model is None or model == "tiny" else SD_SIZE


def points_text(count: int) -> str:
    """``1 point``, ``3 points``: how messages count points."""
    return f"{count} point" if count == 1 else f"{count} points"


def format_bytes(count: float) -> str:
    """``512 MB``, ``1.2 GB``, ``3.4 TB`` (powers of 1000)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count:.0f} B"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int:
    """Memory this process may still take: the system's available memory (``MemAvailable``), or less where a
    cgroup limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) leaves less above its current usage."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            found.append(max(0, limit - usage))
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 1 << 62  # unknown: nothing is refused
    return min(found)


# --------------------------------------------------------------------------------------------- sizes


def image_size_of(cfg: Config, model: ModelSize) -> int:
    """S: the config's image size, or the model's native one."""
    return int(cfg.image_size or model.native_image_size)


def embeddings_bytes(num_points: int, cfg: Config, model: ModelSize) -> float:
    """N fitted embeddings: N x R x 77 x D float32."""
    return float(num_points) * cfg.restarts * cfg.num_tokens * model.context_dim * FLOAT_BYTES


def canvas_bytes(cfg: Config, model: ModelSize) -> float:
    """One point's locate canvases: per restart, a sum per layer and a count, S x S float32 each."""
    size = image_size_of(cfg, model)
    return float(cfg.restarts) * (len(cfg.layers) + 1) * size * size * FLOAT_BYTES


def fit_point_bytes(cfg: Config, model: ModelSize, labels: int = 1) -> float:
    """One point's fit buffers: per restart and label a Gaussian target (S x S float32) and a noisy latent; per
    restart its embedding, gradient and Adam's two moments."""
    size = image_size_of(cfg, model)
    per_sample = size * size * FLOAT_BYTES + 2 * 4 * (size // 8) ** 2 * FLOAT_BYTES
    return float(cfg.restarts) * (labels * per_sample + 4 * cfg.num_tokens * model.context_dim * FLOAT_BYTES)


def sample_bytes(image_size: int, model: ModelSize, training: bool) -> float:
    """One sample through the networks at `image_size`: SD 1.x's at 512 (:data:`FIT_SAMPLE_BYTES_SD_512`,
    :data:`LOCATE_SAMPLE_BYTES_SD_512`), scaled by area, UNet width and bytes per weight."""
    base = FIT_SAMPLE_BYTES_SD_512 if training else LOCATE_SAMPLE_BYTES_SD_512
    return base * (image_size / 512) ** 2 * model.width * model.dtype_bytes / 4


def points_per_chunk(per_point_bytes: float, budget_bytes: float | None = None) -> int:
    """Points per chunk so that their buffers (`per_point_bytes` each) stay within `budget_bytes` (default
    :data:`CHUNK_BYTES`); at least 1."""
    budget = CHUNK_BYTES if budget_bytes is None else budget_bytes
    return max(1, int(budget // max(per_point_bytes, 1.0)))


# --------------------------------------------------------------------------------------------- needs


@dataclass(frozen=True)
class MemoryNeed:
    """A run's estimated memory, by part.

    Attributes:
        kept: (name, bytes) of what the run keeps whole in the host's memory (embeddings, tracks, ...).
        working: (name, bytes) of the working set of one chunk, on the model's device (one point's buffers and
            one sample through the networks at least: what no chunking can shrink).
    """

    kept: tuple[tuple[str, float], ...]
    working: tuple[tuple[str, float], ...]

    @property
    def kept_bytes(self) -> float:
        return sum(b for _, b in self.kept)

    @property
    def working_bytes(self) -> float:
        return sum(b for _, b in self.working)


def _parts(parts: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {format_bytes(b)}" for name, b in parts if b >= 0.005 * sum(x for _, x in parts))


def working_set(cfg: Config, model: ModelSize, training: bool, labels: int = 1) -> tuple[tuple[str, float], ...]:
    """The working set of one point, which no chunking shrinks: its canvases (or fit buffers) and one sample
    through the networks, at the config's image size."""
    size = image_size_of(cfg, model)
    own = ("fit buffers", fit_point_bytes(cfg, model, labels)) if training else ("locate canvases",
                                                                                canvas_bytes(cfg, model))
    return (own, ("one crop through the networks", sample_bytes(size, model, training)),
            ("the image", 2 * 3 * size * size * FLOAT_BYTES))


def track_need(num_points: int, num_frames: int, cfg: Config, model: ModelSize, *, fit: bool = True,
               key_frames: int = 0, maps: bool = False, labels: int = 1) -> MemoryNeed:
    """What tracking N points over T frames keeps, and its working set (see :class:`MemoryNeed`).

    fit: the embeddings are fitted in the run (else loaded). key_frames: frames whose heat maps the viewer keeps
    (the key frames and the labelled frames; 0: no viewer files). maps: some frames' attention maps are asked for
    (key frames, a heat map), all points' at once. labels: the most labels a point has.
    """
    size = image_size_of(cfg, model)
    kept = [("embeddings", embeddings_bytes(num_points, cfg, model) * (2 if fit else 1)),
            ("tracks", float(num_frames) * num_points * TRACK_CELL_BYTES)]
    if maps or key_frames:
        kept.append(("one frame's attention maps", float(num_points) * len(cfg.layers) * size * size * FLOAT_BYTES))
    if key_frames:
        kept += [("key-frame heat maps", float(key_frames) * num_points * HEAT_BYTES),
                 ("the viewer's index", float(num_frames) * num_points * VIEW_CELL_BYTES)]
    return MemoryNeed(tuple(kept), working_set(cfg, model, training=fit, labels=labels))


def fit_need(num_points: int, cfg: Config, model: ModelSize, labels: int = 1) -> MemoryNeed:
    """What fitting N points keeps (their embeddings) and its working set."""
    return MemoryNeed((("embeddings", embeddings_bytes(num_points, cfg, model) * 2),),
                      working_set(cfg, model, training=True, labels=labels))


def locate_need(num_points: int, cfg: Config, model: ModelSize, maps: bool = False) -> MemoryNeed:
    """What locating N points on one image keeps (their maps, when asked for) and its working set."""
    size = image_size_of(cfg, model)
    kept = (("attention maps", float(num_points) * len(cfg.layers) * size * size * FLOAT_BYTES),) if maps else ()
    return MemoryNeed(kept, working_set(cfg, model, training=False))


def check_memory(need: MemoryNeed, what: str, advice: str, *, available: float | None = None,
                 device_available: float | None = None) -> None:
    """Refuse, in one line with the estimate, a run that cannot fit.

    Args:
        need: the estimate. what: the run, as the message names it (``tracking 1000000 points on 30 frames``).
        advice: what to change (``track fewer points``).
        available: the host's memory (default :func:`available_bytes`). device_available: the model's device's,
            where it is not the host (CUDA); None: the working set lives in the host's memory too.

    Raises:
        InputError: one point's working set alone does not fit (the image size is too large), or the whole run
            does not.
    """
    host = available_bytes() if available is None else available
    device = host if device_available is None else device_available
    if need.working_bytes > device:
        raise InputError(f"{what}: even one point needs about {format_bytes(need.working_bytes)} of memory at this "
                         f"image size ({_parts(need.working)}), more than the {format_bytes(device)} available; use a "
                         "smaller --image-size")
    total = need.kept_bytes + (need.working_bytes if device_available is None else 0.0)
    if total > host:
        raise InputError(f"{what} needs about {format_bytes(total)} of memory ({_parts([*need.kept, *need.working])})"
                         f", more than the {format_bytes(host)} available; {advice}")


def check_fit_memory(num_points: int, labels: int, cfg: Config, model: ModelSize,
                     device_available: float | None = None) -> None:
    """:func:`check_memory` of fitting N points (`labels`: the most a point has), with the fit's advice."""
    check_memory(fit_need(num_points, cfg, model, labels), f"fitting {points_text(num_points)}",
                 "fit fewer points at once (a smaller --grid, or the points split over several files)",
                 device_available=device_available)
