"""The batched fast path against the seed's literal sequential loops: the same points in fp32 with the same
random draws (docs/architecture.md, "Fast path and reference path")."""

import numpy as np
import pytest
import torch

import vidcorr
from vidcorr import Config

POINTS = np.array([[10.5, 20.5], [60.0, 30.0], [79.0, 2.0]])


@pytest.fixture(scope="module")
def cfg():
    # flip_prob 0.5 exercises the flip branch; noise stays the seed's uniform draw.
    return Config(image_size=64, num_steps=3, restarts=2, crops=6, lr=0.05, flip_prob=0.5)


@pytest.fixture(scope="module")
def fitted(tiny, cfg):
    from conftest import random_image

    image = random_image(48, 80, seed=1)
    return image, vidcorr.fit(tiny, image, POINTS, cfg), vidcorr.fit_reference(tiny, image, POINTS, cfg)


def test_batched_fit_equals_reference(fitted):
    _, fast, reference = fitted
    assert fast.tensors.shape == (3, 2, 77, 32)
    torch.testing.assert_close(fast.tensors, reference.tensors, rtol=1e-3, atol=1e-4)
    # The embeddings did move from their N(0, 1) start.
    start = vidcorr.fit(vidcorr.LDM.tiny(), fitted[0], POINTS, Config(image_size=64, num_steps=0, restarts=2))
    assert float((fast.tensors - start.tensors).abs().max()) > 0.05


def test_batched_locate_equals_reference(tiny, cfg, fitted):
    from conftest import random_image

    _, fast, _ = fitted
    target = random_image(72, 56, seed=2)
    a = vidcorr.locate(tiny, target, fast, cfg, return_maps=True)
    b = vidcorr.locate_reference(tiny, target, fast, cfg)
    assert a.points.shape == (3, 2) and a.confidence.shape == (3,)
    np.testing.assert_array_equal(a.points, b.points)  # 0 px: the same argmax pixel
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-4)
    assert np.all((a.confidence >= 0) & (a.confidence <= 1))
    assert a.maps.shape == (3, 4, 64, 64)
    # Points come back in the target's own pixels: model space scaled by (56/64, 72/64).
    np.testing.assert_allclose(a.points, a.points_model * [56 / 64, 72 / 64])


def test_micro_batching_changes_nothing(tiny, cfg, fitted):
    image, fast, _ = fitted
    one_at_a_time = vidcorr.fit(tiny, image, POINTS, cfg.replace(max_batch=1))
    torch.testing.assert_close(one_at_a_time.tensors, fast.tensors, rtol=1e-3, atol=1e-4)
    a = vidcorr.locate(tiny, image, fast, cfg.replace(max_batch=2))
    b = vidcorr.locate(tiny, image, fast, cfg)
    np.testing.assert_array_equal(a.points, b.points)


def test_a_points_draws_do_not_depend_on_the_rest_of_the_batch(tiny, cfg, fitted):
    image, fast, _ = fitted
    alone = vidcorr.fit(tiny, image, POINTS[1:2], cfg, point_ids=[1])
    torch.testing.assert_close(alone.tensors[0], fast.tensors[1], rtol=1e-3, atol=1e-4)


def test_same_seed_same_result_other_seed_other_result(tiny, cfg, fitted):
    image, fast, _ = fitted
    again = vidcorr.fit(tiny, image, POINTS, cfg)
    torch.testing.assert_close(again.tensors, fast.tensors, rtol=0, atol=0)
    other = vidcorr.fit(tiny, image, POINTS, cfg.replace(seed=1))
    assert float((other.tensors - fast.tensors).abs().max()) > 0.1


def test_progress_callback_counts_steps_and_crops(tiny, cfg, fitted):
    image, fast, _ = fitted
    calls = []
    vidcorr.fit(tiny, image, POINTS[:1], cfg, progress=lambda *a: calls.append(a))
    vidcorr.locate(tiny, image, fast, cfg, progress=lambda *a: calls.append(a))
    assert calls == [("fit", 1, 3), ("fit", 2, 3), ("fit", 3, 3)] + [("locate", i, 6) for i in range(1, 7)]


def test_noise_none_is_deterministic_and_differs_from_uniform(tiny, cfg, fitted):
    image, fast, _ = fitted
    quiet = cfg.replace(noise="none", seed=5)
    a = vidcorr.locate(tiny, image, fast.subset([0]), quiet.replace(crops=4), return_maps=True)
    b = vidcorr.locate(tiny, image, fast.subset([0]), quiet.replace(crops=4, seed=6), return_maps=True)
    # With no noise and only the (deterministic) corner crops, the seed cannot matter.
    torch.testing.assert_close(a.maps, b.maps, rtol=0, atol=0)
    c = vidcorr.locate(tiny, image, fast.subset([0]), cfg.replace(crops=4), return_maps=True)
    assert float((c.maps - a.maps).abs().max()) > 0


def test_encode_cache_encodes_each_window_once_with_the_same_latents(tiny):
    from vidcorr.method.encode_cache import EncodeCache
    from vidcorr.method.geometry import CropWindow, crop_resize

    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    windows = [CropWindow(0, 0, 59), CropWindow(5, 3, 59), CropWindow(0, 0, 59)]
    cache = EncodeCache(tiny, 64, batch=4)
    out = cache.latents({0: image}, [0, 0, 0], windows)
    assert cache.encoded == 2
    torch.testing.assert_close(out, tiny.encode(crop_resize([image] * 3, windows, 64)), rtol=1e-5, atol=1e-6)
    cache.latents({0: image}, [0], [windows[1]])
    assert cache.encoded == 2
    cache.latents({0: image, 1: image.flip(-1)}, [1], [windows[1]])  # another image key is another entry
    assert cache.encoded == 3


def test_encode_cache_encodes_one_image_at_a_time_on_a_cpu_only(tiny, monkeypatch):
    from types import SimpleNamespace

    from vidcorr.method.encode_cache import EncodeCache
    from vidcorr.method.geometry import CropWindow
    from vidcorr.method.microbatch import encode_batch

    assert encode_batch(tiny, 8) == 1
    assert encode_batch(SimpleNamespace(device=torch.device("cuda")), 8) == 8
    calls = []
    original = tiny.encode
    monkeypatch.setattr(tiny, "encode", lambda images, max_batch=None: calls.append(max_batch) or original(
        images, max_batch))
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    EncodeCache(tiny, 64, batch=4).latents({0: image}, [0, 0], [CropWindow(0, 0, 59), CropWindow(5, 3, 59)])
    assert calls == [1]
