"""Where each embedding's attention peaks on an image (the seed's run_image_with_tokens_cropped).

Per embedding (point x restart): `crops` iterations accumulate a sum and a count on an S x S canvas
per layer. Iterations 0..3 crop around the anchors (0, 0), (0, S), (S, 0), (S, S), which yields
the four corner crops; later ones crop around the argmax (+0.5) of the running average (mean over
layers and heads). Each crop: encode, noise at the locate timestep, UNet, maps upsampled to the
crop's side and added into its window. Then per point: average over restarts, softmax over all
pixels per layer, mean over layers, argmax + 0.5, mapped back to the image's pixels.

Confidence (our addition; the seed has none): the restart- and layer-averaged attention probability
of token 1 at the chosen pixel, before the softmax. It lies in [0, 1] because it is an average of
softmax probabilities over the 77 tokens, and the fit trains it towards 1 at the point (the Gaussian
target's peak) and 0 far from it, so it reads as "how strongly this point's token claims the pixel".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vidcorr import memory
from vidcorr.config import Config
from vidcorr.io.images import check_image
from vidcorr.method import streams
from vidcorr.method.attention import layer_maps, upsample
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.encode_cache import EncodeCache
from vidcorr.method.fit import Progress
from vidcorr.method.geometry import (
    CORNER_ANCHORS,
    CropWindow,
    argmax_point,
    crop_resize,
    draw_window,
    squash_points,
    to_model_image,
    unsquash_points,
)
from vidcorr.method.microbatch import auto_batch, chunk_progress, chunks, device_available
from vidcorr.method.model import LDM
from vidcorr.method.plan import image_size, make_plan, prepare


@dataclass
class Location:
    """Where N embeddings point on one image.

    points: (N, 2) float64 x, y in the image's pixels. confidence: (N,) float32 in [0, 1].
    points_model: (N, 2) the same points in the S x S model space.
    maps: (N, L, S, S) float32 restart-averaged attention maps per layer (before the softmax), when
    asked for with return_maps=True, else None.
    """

    points: np.ndarray
    confidence: np.ndarray
    points_model: np.ndarray
    maps: torch.Tensor | None = None


def _anchor(iteration: int, running: torch.Tensor | None, size: int) -> tuple[float, float]:
    """Where crop `iteration` of one sample is drawn around: the seed's corners first, then the running
    argmax of its (1, S, S) running average."""
    if iteration < len(CORNER_ANCHORS):
        ax, ay = CORNER_ANCHORS[iteration]
        return ax * size, ay * size
    assert running is not None
    x, y = argmax_point(running)[0].tolist()
    return x, y


def _draws(anchor: tuple[float, float], cfg: Config, side: int, latent_shape: tuple[int, ...],
           generator: torch.Generator) -> tuple[CropWindow, torch.Tensor]:
    """One crop's random choices, in the seed's order: crop x, crop y, noise."""
    window = draw_window(anchor, image_size(cfg), side, cfg.crop_margin, generator)
    return window, streams.draw_noise(cfg.noise, latent_shape, generator)


def _canvas_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """sum / count with never-covered pixels as 0 (the seed's NaN -> 0)."""
    return total / count.clamp(min=1).unsqueeze(-3)


def _combine(per_restart: torch.Tensor, size_wh: tuple[int, int], image_size: int,
             return_maps: bool) -> Location:
    """(N, R, L, S, S) restart maps -> the seed's final argmax, plus confidence."""
    mean = per_restart.mean(dim=1)
    n, num_layers = mean.shape[:2]
    soft = torch.softmax(mean.reshape(n, num_layers, -1), dim=-1).reshape(mean.shape).mean(dim=1)
    points_model = argmax_point(soft)
    cols = points_model[:, 0].long()
    rows = points_model[:, 1].long()
    confidence = mean.mean(dim=1)[torch.arange(n), rows, cols]
    pm = points_model.cpu().numpy().astype(np.float64)
    return Location(unsquash_points(pm, size_wh, image_size), confidence.cpu().numpy().astype(np.float32), pm,
                    mean.cpu() if return_maps else None)


def _restart_contexts(ldm: LDM, embeddings: Embeddings, cfg: Config) -> torch.Tensor:
    embeddings.check_compatible(ldm, cfg)
    return embeddings.tensors.reshape(-1, *embeddings.tensors.shape[2:]).to(ldm.device)


def _stream_keys(embeddings: Embeddings, stream_key: int, point_ids: list[int] | None) -> list[tuple[int, ...]]:
    """Random-stream keys of every (point, restart) sample, points outer, as the batch is laid out."""
    ids = streams.point_ids(point_ids, embeddings.num_points)
    return [(stream_key, pid, r) for pid in ids for r in range(embeddings.num_restarts)]


@torch.no_grad()
def locate(ldm: LDM, image: np.ndarray, embeddings: Embeddings, cfg: Config | None = None,
           progress: Progress | None = None, return_maps: bool = False, stream_key: int = 0,
           point_ids: list[int] | None = None, anchors_xy: np.ndarray | None = None) -> Location:
    """Locate every embedding's point on `image`, all points x restarts batched per crop iteration.

    Crops shared by several samples are encoded once. The points go a chunk at a time (`memory.points_per_chunk`:
    at most `memory.CHUNK_BYTES` of canvases), each point's draws its own whatever the chunk, so memory stays
    bounded whatever N; a call whose one point, or whose maps, cannot fit is refused before any work.

    Args:
        ldm: the model.
        image: (H, W, 3) uint8 RGB, any size.
        embeddings: N points' embeddings from `fit`, with a compatible model and cfg.
        cfg: the hyper-parameters (default: the embeddings' own).
        stream_key, point_ids: select the random streams (e.g. a frame index and global point ids);
            the same keys and seed give the same draws.
        anchors_xy: (N, 2) image pixels, or None. None runs the seed's schedule (four corner crops
            first); given, the first crop of each point is a random window keeping its anchor inside the
            margin (tracking: the point's position on the previous frame) and every later crop one keeping
            the running argmax inside it, as in the seed.

    Returns:
        Location: ``points`` float64 (N, 2) x, y in the image's pixels, ``confidence`` (N,), and ``maps``
        float32 (N, L, S, S) restart-averaged maps per layer when asked for.

    Raises:
        InputError: one point's canvases and crop, or the maps asked for, need more memory than there is.
    """
    cfg = prepare(ldm, cfg or embeddings.config)
    image = check_image(image)
    embeddings.check_compatible(ldm, cfg)
    num, restarts = embeddings.num_points, embeddings.num_restarts
    memory.check_memory(memory.locate_need(num, cfg, ldm.sizes, return_maps), f"locating {memory.points_text(num)}",
                        "locate fewer points at once", device_available=device_available(ldm))
    size_wh = (image.shape[1], image.shape[0])
    size = image_size(cfg)
    model_image = to_model_image(image, size, ldm.device)
    keys = _stream_keys(embeddings, stream_key, point_ids)
    first = None
    if anchors_xy is not None:
        anchors_model = squash_points(np.asarray(anchors_xy, dtype=np.float64), size_wh, size)
        first = np.repeat(anchors_model, restarts, axis=0)
    parts = chunks(num, memory.points_per_chunk(memory.canvas_bytes(cfg, ldm.sizes)))
    located = []
    for c, part in enumerate(parts):
        samples = slice(part.start * restarts, part.stop * restarts)
        contexts = embeddings.tensors[part].reshape(-1, *embeddings.tensors.shape[2:]).to(ldm.device)
        total, count = _accumulate(ldm, model_image, contexts, keys[samples], cfg,
                                   None if first is None else first[samples], chunk_progress(progress, c, len(parts)))
        per_restart = _canvas_mean(total, count).reshape(part.stop - part.start, restarts, *total.shape[1:])
        located.append(_combine(per_restart, size_wh, size, return_maps))
        del total, count, per_restart
    return located[0] if len(located) == 1 else _concatenate(located)


def _concatenate(parts: list[Location]) -> Location:
    """The Locations of consecutive chunks of points, as one."""
    maps = [p.maps for p in parts]
    return Location(np.concatenate([p.points for p in parts]), np.concatenate([p.confidence for p in parts]),
                    np.concatenate([p.points_model for p in parts]),
                    None if any(m is None for m in maps) else torch.cat(maps))  # type: ignore[arg-type]


def _accumulate(ldm: LDM, model_image: torch.Tensor, contexts: torch.Tensor, keys: list[tuple[int, ...]],
                cfg: Config, first_anchors: np.ndarray | None,
                progress: Progress | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop iterations for B samples: (B, L, S, S) sums and (B, S, S) counts of upsampled maps."""
    plan = make_plan(ldm, cfg, cfg.locate_timestep_index)
    batch = auto_batch(ldm, cfg, training=False)
    generators = [streams.stream(cfg.seed, streams.LOCATE, *key) for key in keys]
    count_b = len(generators)
    num_fixed = len(CORNER_ANCHORS) if first_anchors is None else 1

    images = {0: model_image}
    cache = EncodeCache(ldm, plan.size, batch)
    total = torch.zeros(count_b, len(plan.layers), plan.size, plan.size, device=ldm.device)
    count = torch.zeros(count_b, plan.size, plan.size, device=ldm.device)
    for iteration in range(cfg.crops):
        running = _canvas_mean(total, count).mean(dim=1) if iteration >= num_fixed else None
        if first_anchors is not None and iteration == 0:
            anchors = [(float(x), float(y)) for x, y in first_anchors]
        elif running is not None:
            anchors = [(x, y) for x, y in argmax_point(running).tolist()]  # every sample's argmax at once
        else:
            anchors = [_anchor(iteration, None, plan.size)] * count_b
        draws = [_draws(anchors[b], cfg, plan.side, plan.latent_shape, gen) for b, gen in enumerate(generators)]
        # One VAE encode per distinct window in the whole call (corner crops are shared by every sample).
        clean = cache.latents(images, [0] * count_b, [window for window, _ in draws])
        latents = ldm.add_noise(clean, torch.stack([noise for _, noise in draws]), plan.timestep)
        for part in chunks(count_b, batch):
            maps = ldm.attention_maps(latents[part], plan.timestep, contexts[part], plan.layers, cfg.heads,
                                      cfg.token_index, stop_early=cfg.stop_early)
            upsampled = layer_maps(maps, cfg.layers, plan.side, heads_first=True)
            for j, b in enumerate(range(part.start, part.stop)):
                w = draws[b][0]
                total[b, :, w.y0:w.y0 + plan.side, w.x0:w.x0 + plan.side] += upsampled[j]
                count[b, w.y0:w.y0 + plan.side, w.x0:w.x0 + plan.side] += 1
        if progress is not None:
            progress("locate", iteration + 1, cfg.crops)
    return total, count


@torch.no_grad()
def locate_reference(ldm: LDM, image: np.ndarray, embeddings: Embeddings, cfg: Config | None = None,
                     progress: Progress | None = None, stream_key: int = 0,
                     point_ids: list[int] | None = None) -> Location:
    """The seed's schedule, literally: per point, per restart, per crop, batch 1, the full UNet with
    explicit attention everywhere, per-head canvases, every head upsampled before averaging."""
    cfg = prepare(ldm, cfg or embeddings.config)
    image = check_image(image)
    size_wh = (image.shape[1], image.shape[0])
    contexts = _restart_contexts(ldm, embeddings, cfg)
    model_image = to_model_image(image, image_size(cfg), ldm.device)
    plan = make_plan(ldm, cfg, cfg.locate_timestep_index)
    keys = _stream_keys(embeddings, stream_key, point_ids)
    done, total_work = 0, len(keys) * cfg.crops

    per_restart = []
    for b, key in enumerate(keys):
        generator = streams.stream(cfg.seed, streams.LOCATE, *key)
        total: torch.Tensor | None = None
        count = torch.zeros(plan.size, plan.size, device=ldm.device)
        for iteration in range(cfg.crops):
            running = None
            if iteration >= len(CORNER_ANCHORS):
                assert total is not None  # set by the first crop
                running = (total / count.clamp(min=1)).mean(dim=(0, 1))[None]
            window, noise = _draws(_anchor(iteration, running, plan.size), cfg, plan.side, plan.latent_shape,
                                   generator)
            clean = ldm.encode(crop_resize([model_image], [window], plan.size))
            latent = ldm.add_noise(clean, noise[None], plan.timestep)
            maps = ldm.attention_maps(latent, plan.timestep, contexts[b:b + 1], plan.layers, cfg.heads, cfg.token_index,
                                      stop_early=False, explicit_everywhere=True)
            heads = torch.stack([upsample(maps[i][0], plan.side) for i in cfg.layers])  # (L, heads, side, side)
            if total is None:
                total = torch.zeros(*heads.shape[:2], plan.size, plan.size, device=ldm.device)
            total[:, :, window.y0:window.y0 + plan.side, window.x0:window.x0 + plan.side] += heads
            count[window.y0:window.y0 + plan.side, window.x0:window.x0 + plan.side] += 1
            done += 1
            if progress is not None:
                progress("locate", done, total_work)
        assert total is not None
        per_restart.append((total / count.clamp(min=1)).mean(dim=1))
    stacked = torch.stack(per_restart).reshape(embeddings.num_points, embeddings.num_restarts, len(plan.layers),
                                               plan.size, plan.size)
    return _combine(stacked, size_wh, plan.size, return_maps=False)
