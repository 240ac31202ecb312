"""Optimize one text embedding per point (and restart) so its attention map peaks on the point.

Per step and sample, in the seed's order (utils/optimize_token.py, optimize_prompt): flip with
probability flip_prob (x -> S - x); a random crop of crop_percent of the side that keeps the point
at least crop_margin of the crop from its edges; bilinear resize of the crop to S; VAE encode; noise
at the fit timestep; UNet; the chosen layers' maps of token 1 (heads averaged, upsampled to S); MSE
against one Gaussian target at the point's crop position for every layer; an Adam step.

`fit` runs all points x restarts in the UNet's batch dimension (micro-batched); `fit_reference`
runs the seed's literal loops (one point, one restart, batch 1, full UNet, explicit attention) and
is the yardstick for tests and the speed benchmark. Both draw from the same per-sample streams.

`fit_labels` is the joint fit of points labelled on several frames: one embedding per point and restart, and per
step one sample per label (the seed's flip, crop, noise and target on that label's frame, drawn from the label's
own stream, `streams.fit_key`); the step minimises the mean of the point's K losses. With K = 1 it is `fit`, bit
for bit. Every label of every point shares the UNet batch (micro-batched) and one encode cache.

Precision: float32 unless the model computes under autocast (`LDM.set_autocast`). Under autocast each
sample (point x restart) is its own Adam parameter: a sample whose gradient is not finite (an fp16
overflow) skips that step alone, its embedding and Adam state untouched, while every other sample
steps. Under float16 the loss is scaled (dynamic loss scaling, as torch.amp.GradScaler: start 2**16,
halved on an overflow, doubled after 2000 clean steps) and the gradients unscaled before the check.
The skipped steps per point (summed over its restarts) and the precision are recorded in the
returned Embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidcorr.config import Config
from vidcorr.errors import InputError
from vidcorr.io.points import PointLabels
from vidcorr.method import streams
from vidcorr.method.attention import layer_maps
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.encode_cache import EncodeCache
from vidcorr.method.geometry import (
    CropWindow,
    check_image,
    check_points,
    crop_resize,
    draw_window,
    gaussian_targets,
    point_in_crop,
    squash_points,
    to_model_image,
)
from vidcorr.method.microbatch import auto_batch, chunks
from vidcorr.method.model import LDM
from vidcorr.method.plan import image_size, make_plan, prepare

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called after each unit of work (a fit step, a locate crop)."""


@dataclass(frozen=True)
class _FitDraw:
    flipped: bool
    window: CropWindow
    target_xy: tuple[float, float]
    noise: torch.Tensor


def _draw(point_model: np.ndarray, cfg: Config, side: int, latent_shape: tuple[int, ...],
          generator: torch.Generator) -> _FitDraw:
    """One fit step's random choices for one sample, in the seed's order: flip, crop x, crop y, noise."""
    size = image_size(cfg)
    flipped = bool(torch.rand((), generator=generator) < cfg.flip_prob)
    x, y = float(point_model[0]), float(point_model[1])
    if flipped:
        x = size - x
    window = draw_window((x, y), size, side, cfg.crop_margin, generator)
    noise = streams.draw_noise(cfg.noise, latent_shape, generator)
    return _FitDraw(flipped, window, point_in_crop((x, y), window, size), noise)


def _initial_contexts(ldm: LDM, cfg: Config, point_ids: Sequence[int]) -> torch.Tensor:
    """(N * R, T, D) starting embeddings: N(0, 1) per sample stream, or the init prompt's encoding."""
    if cfg.init_prompt:
        # transformers (the text encoder) loads only for an init prompt; the seed never uses it
        from vidcorr.method.text_init import prompt_embedding

        start = prompt_embedding(ldm, cfg.init_prompt, cfg.num_tokens)
        return start[None].repeat(len(point_ids) * cfg.restarts, 1, 1)
    return torch.stack([
        torch.randn((cfg.num_tokens, ldm.context_dim), generator=streams.stream(cfg.seed, streams.INIT, pid, r))
        for pid in point_ids for r in range(cfg.restarts)])


def _prepare(ldm: LDM, image: np.ndarray, points_xy: np.ndarray, cfg: Config,
             point_ids: Sequence[int] | None) -> tuple[torch.Tensor, np.ndarray, list[int], tuple[int, int]]:
    image = check_image(image)
    size_wh = (image.shape[1], image.shape[0])
    points = check_points(points_xy, size_wh)
    ids = streams.point_ids(point_ids, len(points))
    size = image_size(cfg)
    model_image = to_model_image(image, size, ldm.device)
    return model_image, squash_points(points, size_wh, size), ids, size_wh


def _finish(ldm: LDM, contexts: torch.Tensor, points: np.ndarray, size_wh: tuple[int, int],
            cfg: Config, frames: np.ndarray | None, skipped: np.ndarray | None = None,
            labels: PointLabels | None = None) -> Embeddings:
    tensors = contexts.detach().float().cpu().reshape(len(points), cfg.restarts, cfg.num_tokens, -1)
    skipped = np.zeros(len(points), dtype=np.int64) if skipped is None else np.asarray(skipped, dtype=np.int64)
    return Embeddings(tensors, np.asarray(points, dtype=np.float64), size_wh, cfg, ldm.model_id,
                      ldm.fingerprint(), frames, precision=precision_name(ldm), skipped_steps=skipped,
                      labels=labels)


def precision_name(ldm: LDM) -> str:
    """How the networks compute: ``float32``/``float16``/``bfloat16`` (the weights' dtype, no autocast) or
    ``autocast-float16``/``autocast-bfloat16`` (float32 weights under torch.autocast)."""
    if ldm.autocast is not None:
        return f"autocast-{ldm.autocast_name}"
    return str(ldm.dtype).removeprefix("torch.")


def _grad(param: torch.Tensor) -> torch.Tensor:
    assert param.grad is not None, "gradients are read after backward()"
    return param.grad


class LossScale:
    """Dynamic fp16 loss scaling (torch.amp.GradScaler's schedule) with a per-sample overflow check."""

    def __init__(self, enabled: bool, init_scale: float = 2.0**16, growth_interval: int = 2000) -> None:
        self.enabled = enabled
        self.scale = init_scale if enabled else 1.0
        self.growth_interval = growth_interval
        self._clean = 0

    def finite_samples(self, params: Sequence[torch.Tensor]) -> list[bool]:
        """Unscale every sample's gradient in place; True where all of it is finite. One device sync."""
        grads = [_grad(p) for p in params]
        if self.enabled:
            torch._foreach_mul_(grads, 1.0 / self.scale)
        return torch.stack([torch.isfinite(g).all() for g in grads]).tolist()

    def update(self, overflow: bool) -> None:
        if not self.enabled:
            return
        if overflow:
            self.scale *= 0.5
            self._clean = 0
            return
        self._clean += 1
        if self._clean == self.growth_interval:
            self.scale *= 2.0
            self._clean = 0


def fit(ldm: LDM, image: np.ndarray, points_xy: np.ndarray, cfg: Config | None = None,
        progress: Progress | None = None, point_ids: Sequence[int] | None = None,
        frames: np.ndarray | None = None) -> Embeddings:
    """Fit embeddings for `points_xy` on `image`, all points x restarts batched.

    Args:
        ldm: the model.
        image: (H, W, 3) uint8 RGB, any size and aspect (squashed to cfg.image_size).
        points_xy: (N, 2) float x, y in the image's pixels (pixel centres at +0.5).
        cfg: the hyper-parameters (default ``Config()``, the seed's).
        progress: ``progress("fit", done, total)`` after each optimisation step.
        point_ids: keys of the points' random streams (default 0..N-1); equal ids and seed give equal
            draws, whatever else is in the batch.
        frames: (N,) int frame of each point, stored with the embeddings (video queries).

    Returns:
        Embeddings with tensors (N, R, 77, D) float32 (R = cfg.restarts, D the UNet's cross-attention width),
        their precision and, under autocast, the steps each point skipped (non-finite gradients; see the
        module docstring).
    """
    cfg = prepare(ldm, cfg)
    model_image, points_model, ids, size_wh = _prepare(ldm, image, points_xy, cfg, point_ids)
    samples = [_Sample(n * cfg.restarts + r, 0, points_model[n], streams.stream(cfg.seed, *streams.fit_key(pid, r)),
                       1.0) for n, pid in enumerate(ids) for r in range(cfg.restarts)]
    contexts, skipped = _optimise(ldm, cfg, {0: model_image}, samples, _initial_contexts(ldm, cfg, ids), progress)
    per_point = skipped.reshape(len(ids), cfg.restarts).sum(axis=1)
    return _finish(ldm, contexts, points_xy, size_wh, cfg, frames, per_point)


def fit_labels(ldm: LDM, frames: Mapping[int, np.ndarray], labels: PointLabels, cfg: Config | None = None,
               progress: Progress | None = None, point_ids: Sequence[int] | None = None) -> Embeddings:
    """Fit one embedding per point (and restart) on every frame where the point is labelled: the joint fit.

    Each Adam step draws, for every label of a point, the seed's flip, crop and noise on that label's frame from
    the label's own stream (`streams.fit_key`), computes the seed's loss there, and steps on the mean of the
    point's K losses. A point with one label is fitted exactly as `fit` fits it on its frame (same streams,
    same math). All labels of all points go through the UNet in one batch (micro-batched), and every labelled
    frame's crops share one VAE encode cache.

    Args:
        ldm: the model.
        frames: frame index -> (H, W, 3) uint8 RGB, every labelled frame (all of one size).
        labels: the points and their labels (t, x, y in the frames' pixels).
        cfg: the hyper-parameters (default ``Config()``).
        progress: ``progress("fit", done, total)`` after each optimisation step.
        point_ids: (N,) keys of the points' random streams (default 0..N-1).

    Returns:
        Embeddings (N, R, 77, D) in point order; ``points``/``frames`` hold each point's first label and
        ``labels`` all of them.
    """
    cfg = prepare(ldm, cfg)
    if labels.num_points == 0:
        raise InputError("give at least one point to fit")
    ids = streams.point_ids(point_ids, labels.num_points)
    needed = sorted({int(t) for rows in labels.labels for t in rows[:, 0]})
    missing = [t for t in needed if t not in frames]
    if missing:
        raise InputError(f"no image given for labelled frame {missing[0]}")
    checked = {t: check_image(frames[t], f"frame {t}") for t in needed}
    sizes = {(image.shape[1], image.shape[0]) for image in checked.values()}
    if len(sizes) > 1:
        raise InputError(f"labelled frames differ in size: {', '.join(f'{w}x{h}' for w, h in sorted(sizes))}")
    size_wh = sizes.pop()
    for point_id, rows in zip(labels.ids, labels.labels, strict=True):
        check_points(rows[:, 1:], size_wh, f"frame of point {point_id}")
    size = image_size(cfg)
    images = {t: to_model_image(image, size, ldm.device) for t, image in checked.items()}
    samples = []
    for n, (pid, rows) in enumerate(zip(ids, labels.labels, strict=True)):
        points_model = squash_points(rows[:, 1:], size_wh, size)
        for r in range(cfg.restarts):
            for k, t in enumerate(rows[:, 0].astype(np.int64).tolist()):
                key = streams.fit_key(pid, r, t if len(rows) > 1 else None)
                samples.append(_Sample(n * cfg.restarts + r, t, points_model[k], streams.stream(cfg.seed, *key),
                                       1.0 / len(rows)))
    contexts, skipped = _optimise(ldm, cfg, images, samples, _initial_contexts(ldm, cfg, ids), progress)
    first = labels.queries
    return _finish(ldm, contexts, first[:, 1:], size_wh, cfg, first[:, 0].astype(np.int64),
                   skipped.reshape(len(ids), cfg.restarts).sum(axis=1), labels)


@dataclass(frozen=True)
class _Sample:
    """One row of the fit batch: a label of a point under one restart.

    param: the embedding (point x restart) it trains; image: its frame; point: (2,) its position in model
    space; generator: its random stream; weight: 1 / K, its share of the point's mean loss.
    """

    param: int
    image: int
    point: np.ndarray
    generator: torch.Generator
    weight: float


def _optimise(ldm: LDM, cfg: Config, model_images: Mapping[int, torch.Tensor], samples: Sequence[_Sample],
              starts: torch.Tensor, progress: Progress | None) -> tuple[torch.Tensor, np.ndarray]:
    """The fit's Adam loop over every sample at once; (P, T, D) fitted embeddings and (P,) skipped steps."""
    plan = make_plan(ldm, cfg, cfg.fit_timestep_index)
    batch = auto_batch(ldm, cfg, training=True)
    # One leaf (and one Adam state) per embedding, so that it can skip a step alone; Adam is elementwise, so
    # this is the same math as one (P, T, D) parameter.
    params = [c.to(ldm.device).requires_grad_(True) for c in starts]
    owner = [s.param for s in samples]
    weights = torch.tensor([s.weight for s in samples], device=ldm.device)
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    checked = ldm.autocast is not None
    scaler = LossScale(enabled=ldm.autocast == torch.float16)
    skipped = np.zeros(len(params), dtype=np.int64)
    images: dict[tuple[int, bool], torch.Tensor] = {(key, False): image for key, image in model_images.items()}
    if cfg.flip_prob > 0:
        images.update({(key, True): image.flip(-1) for key, image in model_images.items()})
    cache = EncodeCache(ldm, plan.size, batch)

    for step in range(cfg.num_steps):
        draws = [_draw(s.point, cfg, plan.side, plan.latent_shape, s.generator) for s in samples]
        with torch.no_grad():
            clean = cache.latents(images, [(s.image, d.flipped) for s, d in zip(samples, draws, strict=True)],
                                  [d.window for d in draws])
            latents = ldm.add_noise(clean, torch.stack([d.noise for d in draws]), plan.timestep)
            targets = gaussian_targets(torch.tensor([d.target_xy for d in draws], device=ldm.device),
                                       plan.size, cfg.sigma)
        for part in chunks(len(draws), batch):
            contexts = torch.stack([params[owner[i]] for i in range(part.start, part.stop)])
            maps = ldm.attention_maps(latents[part], plan.timestep, contexts, plan.layers, cfg.heads,
                                      cfg.token_index, stop_early=cfg.stop_early)
            predicted = layer_maps(maps, cfg.layers, plan.size, heads_first=True)
            # Per-sample MSEs weighted 1 / K and summed: each embedding's gradient is the mean of its labels'
            # losses' gradients, whatever else shares the batch (with K = 1 the weight is exactly 1).
            loss = (((predicted - targets[part, None]) ** 2).mean(dim=(1, 2, 3)) * weights[part]).sum()
            (loss * scaler.scale if scaler.enabled else loss).backward()
        if checked:
            finite = scaler.finite_samples(params)
            for i, ok in enumerate(finite):
                if not ok:  # Adam leaves a parameter without a gradient alone: no step, no state change
                    params[i].grad = None
                    skipped[i] += 1
            scaler.update(overflow=not all(finite))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if progress is not None:
            progress("fit", step + 1, cfg.num_steps)
    return torch.stack(params), skipped


def fit_reference(ldm: LDM, image: np.ndarray, points_xy: np.ndarray, cfg: Config | None = None,
                  progress: Progress | None = None, point_ids: Sequence[int] | None = None) -> Embeddings:
    """The seed's schedule, literally: per point, per restart, batch 1, a VAE encode every step,
    the full UNet with explicit attention everywhere, every head upsampled before averaging.

    Same inputs and outputs as `fit`; slow by design (the benchmark's yardstick).
    """
    cfg = prepare(ldm, cfg)
    model_image, points_model, ids, size_wh = _prepare(ldm, image, points_xy, cfg, point_ids)
    flipped_image = model_image.flip(-1)
    plan = make_plan(ldm, cfg, cfg.fit_timestep_index)
    starts = _initial_contexts(ldm, cfg, ids)
    total, done = len(ids) * cfg.restarts * cfg.num_steps, 0

    fitted = []
    for n, pid in enumerate(ids):
        for r in range(cfg.restarts):
            generator = streams.stream(cfg.seed, *streams.fit_key(pid, r))
            context = starts[n * cfg.restarts + r][None].clone().to(ldm.device).requires_grad_(True)
            optimizer = torch.optim.Adam([context], lr=cfg.lr)
            for _ in range(cfg.num_steps):
                draw = _draw(points_model[n], cfg, plan.side, plan.latent_shape, generator)
                with torch.no_grad():
                    crop = crop_resize([flipped_image if draw.flipped else model_image], [draw.window], plan.size)
                    latent = ldm.add_noise(ldm.encode(crop), draw.noise[None], plan.timestep)
                maps = ldm.attention_maps(latent, plan.timestep, context, plan.layers, cfg.heads, cfg.token_index,
                                          stop_early=False, explicit_everywhere=True)
                predicted = layer_maps(maps, cfg.layers, plan.size, heads_first=False)[0]
                target = gaussian_targets(torch.tensor([draw.target_xy], device=ldm.device), plan.size, cfg.sigma)
                loss = torch.nn.functional.mse_loss(predicted, target.expand_as(predicted))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                done += 1
                if progress is not None:
                    progress("fit", done, total)
            fitted.append(context.detach()[0])
    return _finish(ldm, torch.stack(fitted), points_xy, size_wh, cfg, None)
