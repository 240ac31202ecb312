"""The method pinned against a transcription of the seed's code written in this file, not vidcorr's helpers.

The transcription follows ubc-vision/LDM_correspondences (utils/optimize_token.py: optimize_prompt,
crop_image, image2latent, gaussian_circle, upscale_to_img_size, run_image_with_tokens_cropped,
find_max_pixel_value; utils/optimize.py: validate_epoch; prompt-to-prompt's AttentionStore) step by step,
on the raw diffusers UNet, VAE and a DDIM scheduler built here. It draws its randomness in the seed's order
(flip, crop x, crop y, noise) from the same per-sample generators vidcorr keys by (purpose, point, restart):
the keying is vidcorr's contract, the draws and everything done with them are the seed's.

Where the seed hard-codes 512, the transcription uses the model side S (64 here, latent 8): the layer filter
``attn.shape[1] <= 32 ** 2`` becomes ``<= (S / 16) ** 2``, the corner anchors (0, S) etc.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

import vidcorr
from vidcorr import Config
from vidcorr.method import streams
from vidcorr.method.embeddings import Embeddings

S = 64
CFG = Config(image_size=S, num_steps=3, restarts=2, crops=7, lr=0.05, sigma=6.0, flip_prob=0.5)
POINTS = np.array([[10.5, 20.5], [40.0, 52.25]])


# --------------------------------------------------------------------------------------------- the transcription


class SeedStore:
    """prompt-to-prompt's AttentionStore: cross-attention maps (second half of the batch x heads) per place."""

    def __init__(self, size: int) -> None:
        self.limit = (size // 16) ** 2  # attn.shape[1] <= 32 ** 2 at 512
        self.store: dict[str, list[torch.Tensor]] = {"down": [], "mid": [], "up": []}

    def __call__(self, attn: torch.Tensor, place: str) -> None:
        h = attn.shape[0]
        kept = attn[h // 2:]
        if kept.shape[1] <= self.limit:
            self.store[place].append(kept)


class SeedCrossAttention:
    """register_attention_control's forward for a cross-attention layer: explicit softmax(q k^T * scale)."""

    def __init__(self, store: SeedStore, place: str) -> None:
        self.store, self.place = store, place

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        context = encoder_hidden_states
        b, n, _ = hidden_states.shape
        heads = attn.heads

        def to_heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, t.shape[1], heads, -1).permute(0, 2, 1, 3).reshape(b * heads, t.shape[1], -1)

        q, k, v = to_heads(attn.to_q(hidden_states)), to_heads(attn.to_k(context)), to_heads(attn.to_v(context))
        probs = (torch.einsum("bid,bjd->bij", q, k) * attn.scale).softmax(dim=-1)
        self.store(probs, self.place)
        out = torch.einsum("bij,bjd->bid", probs, v)
        out = out.reshape(b, heads, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1)
        return attn.to_out[1](attn.to_out[0](out))


class Seed:
    """The seed's pipeline on a UNet and a VAE of its own (its processors are installed once, here)."""

    def __init__(self) -> None:
        model = vidcorr.LDM.tiny(seed=0)  # the same weights as the `tiny` fixture; a separate copy
        self.unet, self.vae = model.unet, model.vae
        self.scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       clip_sample=False, set_alpha_to_one=False)
        self.scheduler.set_timesteps(50)
        self.store = SeedStore(S)
        from diffusers.models.attention_processor import AttnProcessor

        table = {}
        for name in self.unet.attn_processors:
            place = name.split("_")[0]  # down_blocks / mid_block / up_blocks
            table[name] = SeedCrossAttention(self.store, place) if ".attn2." in name else AttnProcessor()
        self.unet.set_attn_processor(table)

    # --- utils/optimize_token.py, transcribed --------------------------------------------------------
    @staticmethod
    def crop_image(image: np.ndarray, pixel, g: torch.Generator, crop_percent: float, margin: float = 0.15):
        height, width, _ = image.shape
        crop_height, crop_width = int(height * crop_percent / 100), int(width * crop_percent / 100)
        x, y = float(pixel[0]), float(pixel[1])
        safe_x, safe_y = int(crop_width * margin), int(crop_height * margin)
        x_min = min(max(0, x - crop_width + safe_x), width - crop_width)
        x_max = min(max(0, x - safe_x), width - crop_width)
        y_min = min(max(0, y - crop_height + safe_y), height - crop_height)
        y_max = min(max(0, y - safe_y), height - crop_height)
        x_start = torch.randint(int(x_min), int(x_max) + 1, (1,), generator=g).item()
        y_start = torch.randint(int(y_min), int(y_max) + 1, (1,), generator=g).item()
        cropped = image[y_start:y_start + crop_height, x_start:x_start + crop_width]
        cropped = F.interpolate(torch.tensor(cropped[None]).permute(0, 3, 1, 2), size=(S, S), mode="bilinear",
                                align_corners=False)[0]
        new_pixel = torch.tensor([x - x_start, y - y_start]) / crop_width
        return cropped.permute(1, 2, 0).numpy(), new_pixel, y_start, crop_height, x_start, crop_width

    def image2latent(self, image: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            tensor = (torch.from_numpy(image).float() * 2 - 1).permute(2, 0, 1).unsqueeze(0)
            return self.vae.encode(tensor)["latent_dist"].mean * 0.18215

    def run_unet(self, latents: torch.Tensor, context: torch.Tensor, t: torch.Tensor) -> None:
        self.store.store = {"down": [], "mid": [], "up": []}
        self.unet(latents, t, encoder_hidden_states=context)

    def upscale_to_img_size(self, upsample_res: int, layers) -> torch.Tensor:
        imgs, layer_overall = [], -1
        for key in ("down", "mid", "up"):
            for img in self.store.store[key]:
                layer_overall += 1
                if layer_overall not in layers:
                    continue
                side = int(img.shape[1] ** 0.5)
                img = img.reshape(4, side, side, img.shape[2])[None, :, :, :, 1]
                imgs.append(F.interpolate(img, size=(upsample_res, upsample_res), mode="bilinear",
                                          align_corners=False))
        return torch.cat(imgs, dim=0)  # (L, 4, res, res)

    @staticmethod
    def gaussian_circle(pos: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
        _pos = pos * size
        grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), dim=-1)
        dist_sq = (grid[..., 1] - _pos[0]) ** 2 + (grid[..., 0] - _pos[1]) ** 2
        return torch.exp(-1 * dist_sq / (2.0 * sigma**2.0))

    @staticmethod
    def find_max_pixel_value(tens: torch.Tensor, img_size: int) -> torch.Tensor:
        height = tens.shape[0]
        max_loc = torch.argmax(tens.reshape(-1))
        max_pixel = torch.stack([max_loc % height, torch.div(max_loc, height, rounding_mode="floor")])
        return max_pixel / height * img_size

    def step_loss(self, image: np.ndarray, pixel_loc: torch.Tensor, context: torch.Tensor, g: torch.Generator,
                  cfg: Config) -> torch.Tensor:
        """The loss of one optimize_prompt step, its draws taken from `g` (flip, crop x, crop y, noise)."""
        t = self.scheduler.timesteps[cfg.fit_timestep_index]
        with torch.no_grad():
            if torch.rand((), generator=g).item() > cfg.flip_prob:  # np.random.rand() > flip_prob
                cropped, cropped_pixel, *_ = self.crop_image(image, pixel_loc * S, g, cfg.crop_percent)
            else:
                flipped = np.flip(image, axis=1).copy()
                loc = pixel_loc.clone()
                loc[0] = 1 - loc[0]
                cropped, cropped_pixel, *_ = self.crop_image(flipped, loc * S, g, cfg.crop_percent)
            latent = self.image2latent(cropped)
        noisy = self.scheduler.add_noise(latent, torch.rand(latent.shape, generator=g), t)
        self.run_unet(noisy, context, t)
        maps = self.upscale_to_img_size(S, cfg.layers).mean(dim=1)
        gt = self.gaussian_circle(cropped_pixel, S, cfg.sigma).reshape(1, -1).repeat(len(maps), 1)
        return torch.nn.MSELoss()(maps.reshape(len(maps), -1), gt)

    def optimize_prompt(self, image: np.ndarray, pixel_loc: torch.Tensor, context: torch.Tensor,
                        g: torch.Generator, cfg: Config) -> torch.Tensor:
        context = context.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([context], lr=cfg.lr)
        for _ in range(cfg.num_steps):
            loss = self.step_loss(image, pixel_loc, context, g, cfg)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        return context.detach()

    @torch.no_grad()
    def run_image_with_tokens_cropped(self, image: np.ndarray, context: torch.Tensor, g: torch.Generator,
                                      cfg: Config) -> torch.Tensor:
        t = self.scheduler.timesteps[cfg.locate_timestep_index]
        num = torch.zeros(len(cfg.layers), 4, S, S)
        total = torch.zeros(len(cfg.layers), 4, S, S)
        corners = torch.tensor([[0, 0], [0, S], [S, 0], [S, S]]).float()
        for i in range(cfg.crops):
            if i < 4:
                pixel_loc = corners[i]
            else:
                running = total / num
                running[running != running] = 0
                pixel_loc = self.find_max_pixel_value(running.mean(dim=0).mean(dim=0), img_size=S) + 0.5
            cropped, _, y0, h, x0, w = self.crop_image(image, pixel_loc, g, cfg.crop_percent)
            latents = self.image2latent(cropped)
            latents = self.scheduler.add_noise(latents, torch.rand(latents.shape, generator=g), t)
            self.run_unet(latents, context, t)
            maps = self.upscale_to_img_size(h, cfg.layers)
            num[:, :, y0:y0 + h, x0:x0 + w] += 1
            total[:, :, y0:y0 + h, x0:x0 + w] += maps
        return total / num  # (L, 4, S, S)

    def locate_point(self, image: np.ndarray, contexts: list[torch.Tensor], generators, cfg: Config):
        """validate_epoch's combination for one point: restarts averaged, per-layer softmax, mean, argmax + 0.5.

        Returns (x, y) in S-space, the confidence (restart- and layer-mean attention at the chosen pixel,
        before the softmax) and the (L, S, S) restart-averaged maps.
        """
        all_maps = []
        for context, g in zip(contexts, generators, strict=True):
            attn_maps = self.run_image_with_tokens_cropped(image, context, g, cfg)
            all_maps.append(torch.stack([attn_maps[k].mean(dim=0, keepdim=True) for k in range(len(attn_maps))]))
        mean = torch.stack(all_maps).mean(dim=0)  # (L, 1, S, S)
        soft = torch.nn.Softmax(dim=-1)(mean.reshape(len(cfg.layers), S * S)).reshape(len(cfg.layers), S, S)
        point = self.find_max_pixel_value(soft.mean(dim=0), img_size=S) + 0.5
        col, row = int(point[0]), int(point[1])
        confidence = float(mean[:, 0, row, col].mean())
        return point.numpy().astype(np.float64), confidence, mean[:, 0]


def initial_embedding(pid: int, r: int, cfg: Config, dim: int) -> torch.Tensor:
    """The N(0, 1) starting embedding (77, D) of one sample, from its INIT stream."""
    return torch.randn((cfg.num_tokens, dim), generator=streams.stream(cfg.seed, streams.INIT, pid, r))[None]


def _image(height: int = S, width: int = S, seed: int = 1) -> np.ndarray:
    from conftest import random_image

    return random_image(height, width, seed=seed)


@pytest.fixture(scope="module")
def seed() -> Seed:
    return Seed()


@pytest.fixture(scope="module")
def seed_fit(seed):
    """The seed's embeddings for POINTS on a 64 x 64 image: (N, R, 77, D)."""
    image = _image()
    as_float = image.astype(np.float32) / 255.0
    out = []
    for pid, (x, y) in enumerate(POINTS):
        out.append(torch.stack([
            seed.optimize_prompt(as_float, torch.tensor([x, y]) / S, initial_embedding(pid, r, CFG, 32),
                                 streams.stream(CFG.seed, streams.FIT, pid, r), CFG)[0]
            for r in range(CFG.restarts)]))
    return image, torch.stack(out)


# --------------------------------------------------------------------------------------------- fit


def test_the_scheduler_and_its_timesteps_are_the_seeds(seed):
    assert seed.scheduler.timesteps[-8] == 140 and seed.scheduler.timesteps[-3] == 40
    assert vidcorr.LDM.tiny().timestep(CFG.num_inference_steps, CFG.fit_timestep_index) == 140
    assert vidcorr.LDM.tiny().timestep(CFG.num_inference_steps, CFG.locate_timestep_index) == 40
    torch.testing.assert_close(vidcorr.LDM.tiny().scheduler.alphas_cumprod, seed.scheduler.alphas_cumprod,
                               rtol=0, atol=0)


def test_the_flip_branch_and_the_plain_branch_both_run(seed_fit):
    # flip_prob 0.5: over 2 points x 2 restarts x 3 steps both branches of the seed's rule are taken.
    flips = [torch.rand((), generator=g).item() <= CFG.flip_prob
             for g in (streams.stream(CFG.seed, streams.FIT, p, r) for p in range(2) for r in range(2))]
    assert set(flips) == {True, False}


def test_reference_fit_equals_the_seeds_optimize_prompt(tiny, seed_fit):
    image, expected = seed_fit
    reference = vidcorr.fit_reference(tiny, image, POINTS, CFG)
    torch.testing.assert_close(reference.tensors, expected, rtol=1e-4, atol=1e-5)
    start = torch.stack([torch.stack([initial_embedding(p, r, CFG, 32)[0] for r in range(2)]) for p in range(2)])
    assert float((expected - start).abs().max()) > 0.1  # the embeddings moved


def test_batched_fit_equals_the_seeds_optimize_prompt(tiny, seed_fit):
    image, expected = seed_fit
    fast = vidcorr.fit(tiny, image, POINTS, CFG)
    torch.testing.assert_close(fast.tensors, expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------- locate


@pytest.fixture(scope="module")
def located(tiny, seed, seed_fit):
    """vidcorr's locate (fast and reference) and the seed's, for the fitted embeddings on a 72 x 56 target."""
    src, tensors = seed_fit
    target = _image(72, 56, seed=2)
    embeddings = Embeddings(tensors, POINTS, (S, S), CFG, tiny.model_id, tiny.fingerprint())
    # The seed's images are already square: squash the target the way vidcorr does before it sees it.
    square = F.interpolate(torch.from_numpy(target).permute(2, 0, 1).float()[None] / 255.0, size=(S, S),
                           mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)
    square = square.permute(1, 2, 0).contiguous().numpy()
    expected = [seed.locate_point(square, [tensors[p, r][None] for r in range(CFG.restarts)],
                                  [streams.stream(CFG.seed, streams.LOCATE, 0, p, r) for r in range(CFG.restarts)],
                                  CFG) for p in range(len(POINTS))]
    fast = vidcorr.locate(tiny, target, embeddings, CFG, return_maps=True)
    reference = vidcorr.locate_reference(tiny, target, embeddings, CFG)
    return target, expected, fast, reference


def test_locate_maps_equal_the_seeds_canvases_averaged_over_restarts(located):
    _, expected, fast, _ = located
    for p, (_, _, maps) in enumerate(expected):
        torch.testing.assert_close(fast.maps[p], maps, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_located_points_are_the_seeds_argmax_plus_half_unsquashed_to_0_px(located, path):
    target, expected, fast, reference = located
    location = fast if path == "fast" else reference
    height, width = target.shape[:2]
    for p, (point, _, _) in enumerate(expected):
        np.testing.assert_array_equal(location.points_model[p], point)
        # Un-squashing: x * W / S, y * H / S, in the target's own pixels.
        np.testing.assert_array_equal(location.points[p], point * [width / S, height / S])


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_confidence_is_the_mean_attention_at_the_chosen_pixel(located, path):
    _, expected, fast, reference = located
    location = fast if path == "fast" else reference
    np.testing.assert_allclose(location.confidence, [c for _, c, _ in expected], rtol=1e-5)


# --------------------------------------------------------------------------------------------- the final combination


def test_restart_mean_per_layer_softmax_and_confidence_at_the_chosen_pixel_by_hand():
    """Maps where every rule of the combination matters (values hand-picked, verdicts hand-computed).

    Restart-mean maps: layer 0 is 5 everywhere but 5.2 at p = (col 1, row 2) and 5 at q = (col 6, row 5);
    layer 1 is 0 everywhere but 0.9 at p and 1.0 at q. Raw mean over layers: p 3.05 > q 3.0. Per-layer softmax
    (both layers share the normaliser up to e^5, 64 pixels): p ~ e^0.2 + e^0.9 = 3.68 < q ~ 1 + e^1 = 3.72, so
    the seed picks q: (6.5, 5.5). Confidence is the raw mean at q, 3.0, not the 3.05 peak at p. The two
    restarts differ (their mean is the map above), so taking one restart or the max gives another answer.
    """
    from vidcorr.method.locate import _combine

    mean = torch.zeros(2, 8, 8)
    mean[0] = 5.0
    mean[0, 2, 1] = 5.2
    mean[1, 2, 1], mean[1, 5, 6] = 0.9, 1.0
    offset = torch.zeros(2, 8, 8)
    offset[0, 5, 6], offset[1, 2, 1] = 3.0, -0.8  # restart 0 = mean + offset, restart 1 = mean - offset
    per_restart = torch.stack([mean + offset, mean - offset])[None]  # (N=1, R=2, L=2, 8, 8)
    # Check the hand arithmetic on the softmax itself before asking vidcorr.
    z0, z1 = torch.exp(mean[0]).sum(), torch.exp(mean[1]).sum()
    assert float(torch.exp(mean[0, 2, 1]) / z0 + torch.exp(mean[1, 2, 1]) / z1) < float(
        torch.exp(mean[0, 5, 6]) / z0 + torch.exp(mean[1, 5, 6]) / z1)
    location = _combine(per_restart, (16, 24), 8, return_maps=True)
    np.testing.assert_array_equal(location.points_model, [[6.5, 5.5]])
    np.testing.assert_array_equal(location.points, [[6.5 * 2, 5.5 * 3]])  # un-squashed by (16/8, 24/8)
    np.testing.assert_allclose(location.confidence, [3.0], rtol=1e-6)
    torch.testing.assert_close(location.maps[0], mean)


def test_layer_numbering_heads_and_upsampling_against_the_seeds_store(tiny, seed):
    """One UNet call: vidcorr's maps of every numbered layer equal the seed store's, in the seed's order."""
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn((1, 4, S // 8, S // 8), generator=generator)
    context = torch.randn((1, 77, 32), generator=generator)
    seed.run_unet(latents, context, torch.tensor(140))
    stored = seed.store.store["down"] + seed.store.store["mid"] + seed.store.store["up"]
    assert [int(m.shape[1] ** 0.5) for m in stored] == [4, 4, 2, 2, 1, 2, 2, 2, 4, 4, 4]
    assert [layer.side for layer in tiny.layers(S)] == [4, 4, 2, 2, 1, 2, 2, 2, 4, 4, 4]
    layers = list(range(11))
    expected = seed.upscale_to_img_size(S, layers).mean(dim=1)  # (11, S, S): heads 4..7 upsampled, averaged
    from vidcorr.method.attention import layer_maps

    maps = tiny.attention_maps(latents, 140, context, tiny.select_layers(S, layers), stop_early=False)
    for heads_first in (True, False):
        torch.testing.assert_close(layer_maps(maps, layers, S, heads_first=heads_first)[0], expected,
                                   rtol=1e-4, atol=1e-7)


def test_encode_is_the_posterior_mean_times_0_18215(tiny, seed):
    image = torch.rand((1, 3, S, S), generator=torch.Generator().manual_seed(4))
    expected = seed.image2latent(image[0].permute(1, 2, 0).numpy())
    torch.testing.assert_close(tiny.encode(image), expected, rtol=1e-5, atol=1e-6)


def test_add_noise_is_the_schedulers_with_uniform_noise(tiny, seed):
    latents = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    g1, g2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    noise = streams.draw_noise("uniform", (2, 4, 8, 8), g1)
    assert float(noise.min()) >= 0.0 and float(noise.max()) < 1.0
    torch.testing.assert_close(noise, torch.rand((2, 4, 8, 8), generator=g2), rtol=0, atol=0)
    torch.testing.assert_close(tiny.add_noise(latents, noise, 140),
                               seed.scheduler.add_noise(latents, noise, torch.tensor([140, 140])),
                               rtol=1e-6, atol=1e-6)
