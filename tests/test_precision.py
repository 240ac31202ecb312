"""Autocast and torch.compile: how the math is computed changes, the math does not."""

import numpy as np
import pytest
import torch

import vidcorr
from vidcorr import Config
from vidcorr.errors import InputError

POINTS = np.array([[10.5, 20.5], [60.0, 30.0]])
CFG = Config(image_size=64, num_steps=3, restarts=1, crops=5, lr=0.05)


def _image():
    from conftest import random_image

    return random_image(48, 80, seed=1)


def _conv_output_dtypes(ldm):
    """Record the dtype of every UNet and VAE conv output while the hooks are on."""
    seen, handles = set(), []
    for module in list(ldm.unet.modules()) + list(ldm.vae.modules()):
        if isinstance(module, torch.nn.Conv2d):
            handles.append(module.register_forward_hook(lambda m, i, o: seen.add(o.dtype)))
    return seen, handles


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_the_networks_in_low_precision_and_stays_close_to_float32(dtype):
    image = _image()
    reference = vidcorr.fit(vidcorr.LDM.tiny(), image, POINTS, CFG)
    ldm = vidcorr.LDM.tiny().set_autocast(dtype)
    seen, handles = _conv_output_dtypes(ldm)
    try:
        fitted = vidcorr.fit(ldm, image, POINTS, CFG)
        located = vidcorr.locate(ldm, image, fitted, CFG)
    finally:
        for handle in handles:
            handle.remove()
    assert seen == {dtype}  # every conv of both networks ran in the autocast dtype
    # Embeddings, maps and points come back float32, near the float32 run. Adam's first steps move a
    # coordinate by about lr whatever its gradient's size, so where a gradient is near 0 the rounding
    # can flip its sign: compare coordinate by coordinate, not by the largest difference.
    assert fitted.tensors.dtype == torch.float32
    difference = (fitted.tensors - reference.tensors).abs()
    assert float(difference.max()) > 0  # autocast did change the rounding
    assert float((difference <= 0.02).float().mean()) > 0.97
    assert located.points.dtype == np.float64 and np.isfinite(located.points).all()


def test_float16_autocast_scales_the_loss_and_steps_like_float32(monkeypatch):
    """The loss is scaled under float16 only, and the fp16 fit's first step matches float32's."""
    from vidcorr.method.fit import LossScale

    scales = []
    original = LossScale.finite_samples

    def spy(self, params):
        scales.append(self.scale if self.enabled else None)
        return original(self, params)

    monkeypatch.setattr(LossScale, "finite_samples", spy)
    image, cfg = _image(), CFG.replace(num_steps=1)
    vidcorr.fit(vidcorr.LDM.tiny(), image, POINTS, cfg)
    assert scales == []  # float32: no check, no scale
    bf16 = vidcorr.fit(vidcorr.LDM.tiny().set_autocast(torch.bfloat16), image, POINTS, cfg)
    assert scales == [None]
    fp16 = vidcorr.fit(vidcorr.LDM.tiny().set_autocast(torch.float16), image, POINTS, cfg)
    assert scales == [None, 65536.0]
    assert (bf16.precision, fp16.precision) == ("autocast-bfloat16", "autocast-float16")
    assert fp16.skipped_steps.tolist() == [0, 0]
    # Adam's first step moves each coordinate by about lr in the gradient's direction: the fp16 step
    # must move (no skipped step, no inf) and point the same way as float32's, coordinate by coordinate.
    fp32 = vidcorr.fit(vidcorr.LDM.tiny(), image, POINTS, cfg)
    start = vidcorr.fit(vidcorr.LDM.tiny(), image, POINTS, cfg.replace(num_steps=0))
    moved32, moved16 = fp32.tensors - start.tensors, fp16.tensors - start.tensors
    assert float(moved32.abs().max()) == pytest.approx(0.05, rel=0.01)
    assert float(moved16.abs().max()) == pytest.approx(0.05, rel=0.01)
    agree = (torch.sign(moved32) == torch.sign(moved16)).float().mean()
    assert float(agree) > 0.95


def _overflow_at(ldm, monkeypatch, step: int, sample: int) -> list[float]:
    """Make `sample`'s gradient infinite at fit step `step` (0-based); returns the loss scale after each step."""
    from vidcorr.method.fit import LossScale

    calls = {"n": 0}
    original = ldm.attention_maps

    def maps(latents, timestep, contexts, *args, **kwargs):
        if calls["n"] == step:
            def poison(grad):
                grad = grad.clone()
                grad[sample] = float("inf")
                return grad
            contexts.register_hook(poison)
        calls["n"] += 1
        return original(latents, timestep, contexts, *args, **kwargs)

    monkeypatch.setattr(ldm, "attention_maps", maps)
    scales = []
    update = LossScale.update
    monkeypatch.setattr(LossScale, "update", lambda self, overflow: (update(self, overflow), scales.append(self.scale)))
    return scales


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_an_overflow_in_one_sample_skips_that_samples_step_only(monkeypatch, dtype):
    points = np.array([[10.5, 20.5], [60.0, 30.0], [30.0, 40.0]])
    image, cfg = _image(), CFG.replace(num_steps=2)
    clean = vidcorr.fit(vidcorr.LDM.tiny().set_autocast(dtype), image, points, cfg)
    one_step = vidcorr.fit(vidcorr.LDM.tiny().set_autocast(dtype), image, points, cfg.replace(num_steps=1))
    ldm = vidcorr.LDM.tiny().set_autocast(dtype)
    scales = _overflow_at(ldm, monkeypatch, step=1, sample=1)
    hit = vidcorr.fit(ldm, image, points, cfg)
    assert hit.skipped_steps.tolist() == [0, 1, 0] and clean.skipped_steps.tolist() == [0, 0, 0]
    # Point 1 lost its last step alone: it is where one step leaves it (the draws do not depend on the
    # embeddings); points 0 and 2 took both steps, as without the overflow.
    torch.testing.assert_close(hit.tensors[1], one_step.tensors[1], rtol=0, atol=0)
    torch.testing.assert_close(hit.tensors[[0, 2]], clean.tensors[[0, 2]], rtol=1e-6, atol=1e-7)
    assert torch.isfinite(hit.tensors).all()
    # float16: the loss scale is halved after the step that overflowed (bfloat16 has no scaling).
    assert scales == ([65536.0, 32768.0] if dtype == torch.float16 else [1.0, 1.0])


def test_float32_never_checks_or_skips(monkeypatch):
    ldm = vidcorr.LDM.tiny()
    _overflow_at(ldm, monkeypatch, step=0, sample=0)
    fitted = vidcorr.fit(ldm, _image(), POINTS, CFG.replace(num_steps=1))
    # The seed's float32 loop has no check: the inf goes into Adam, as it would there.
    assert fitted.precision == "float32" and fitted.skipped_steps.tolist() == [0, 0]
    assert not torch.isfinite(fitted.tensors[0]).all() and torch.isfinite(fitted.tensors[1]).all()


def test_autocast_rejects_other_dtypes_and_low_precision_weights():
    with pytest.raises(InputError, match=r"^autocast takes float16 or bfloat16, not torch.float64$"):
        vidcorr.LDM.tiny().set_autocast(torch.float64)
    with pytest.raises(InputError, match=r"^autocast needs float32 weights; these are float16 "
                                         r"\(load the model with dtype=torch.float32\)$"):
        vidcorr.LDM.tiny(dtype=torch.float16).set_autocast(torch.float16)
    ldm = vidcorr.LDM.tiny().set_autocast(torch.bfloat16).set_autocast(None)
    assert ldm.autocast is None


def test_compiled_model_gives_the_eager_maps_gradients_and_latents(tiny):
    """torch.compile of the VAE encoder and the UNet's ResNet blocks: same numbers to fp32 rounding."""
    compiled = vidcorr.LDM.tiny().compile()
    assert compiled.compiled and compiled.compile() is compiled  # idempotent
    layers = tiny.select_layers(64, CFG.layers)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((2, 3, 64, 64), generator=generator)
    latents = torch.randn((2, 4, 8, 8), generator=generator)
    start = torch.randn((2, 77, 32), generator=generator)

    def maps_and_grad(ldm):
        contexts = start.clone().requires_grad_(True)
        maps = ldm.attention_maps(latents, 140, contexts, layers)
        sum(m.square().sum() for m in maps.values()).backward()
        return maps, contexts.grad, ldm.encode(images)

    eager_maps, eager_grad, eager_latents = maps_and_grad(tiny)
    maps, grad, latents_c = maps_and_grad(compiled)
    assert maps.keys() == eager_maps.keys()
    for index in maps:
        torch.testing.assert_close(maps[index], eager_maps[index], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad, eager_grad, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(latents_c, eager_latents, rtol=1e-4, atol=1e-5)


def test_run_estimate_times_a_compiled_model_on_its_second_call(monkeypatch):
    """The first call of a compiled model compiles: the CPU run-time warning must not count it."""
    import itertools
    import time

    from vidcorr.method.estimate import estimate_run

    ldm = vidcorr.LDM.tiny()
    clock = itertools.count()
    calls = []
    # Each encode / forward "takes" 1 s on its first call and 0.1 s after, on a fake clock.
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock) * 0.1)

    def fake(name):
        def run(*args, **kwargs):
            calls.append(name)
            for _ in range(9 if calls.count(name) == 1 else 0):
                next(clock)
        return run

    monkeypatch.setattr(ldm, "encode", fake("encode"))
    monkeypatch.setattr(ldm, "attention_maps", fake("forward"))
    cfg = Config(image_size=64, num_steps=10, restarts=2, crops=3)
    eager = estimate_run(ldm, cfg, num_points=1, num_images=4)
    assert calls == ["encode", "forward"]
    assert eager.vae_encode_s == pytest.approx(1.0) and eager.unet_forward_s == pytest.approx(1.0)
    # fit: steps x samples x (encode + forward + backward as two forwards); locate: images x crops x
    # (samples x forward + encode).
    assert eager.fit_s == pytest.approx(10 * 2 * 4.0) and eager.locate_s == pytest.approx(4 * 3 * 3.0)
    calls.clear()
    ldm.compiled = True
    compiled = estimate_run(ldm, cfg, num_points=1, num_images=4)
    assert calls == ["encode", "forward", "encode", "forward"]
    assert compiled.vae_encode_s == pytest.approx(0.1) and compiled.unet_forward_s == pytest.approx(0.1)


def test_loss_scale_unscales_checks_each_sample_and_follows_gradscalers_schedule():
    from vidcorr.method.fit import LossScale

    scale = LossScale(enabled=True, growth_interval=2)
    params = [torch.zeros(2, requires_grad=True) for _ in range(3)]
    for p, g in zip(params, ([65536.0, -131072.0], [float("inf"), 0.0], [float("nan"), 1.0]), strict=True):
        p.grad = torch.tensor(g)
    assert scale.finite_samples(params) == [True, False, False]
    assert params[0].grad.tolist() == [1.0, -2.0]  # unscaled in place: 65536 -> 1
    scale.update(overflow=True)
    assert scale.scale == 32768.0
    scale.update(overflow=False)
    scale.update(overflow=False)
    assert scale.scale == 65536.0  # doubled after growth_interval clean steps
    off = LossScale(enabled=False)
    params[0].grad = torch.tensor([3.0, 4.0])
    assert off.finite_samples(params[:1]) == [True] and params[0].grad.tolist() == [3.0, 4.0] and off.scale == 1.0
