"""The order of `locate`'s final combination, end to end through `vidcorr.locate`, on its maps, point and confidence.

The crop loop is replaced by hand-made canvases (sums and counts per restart and layer), and the seed's order is
transcribed here (eval.py after run_image_with_tokens_cropped): each restart's canvas mean (sum / count, never
covered pixels 0), then the mean over restarts, then a softmax over all pixels of each layer, then the mean over
layers, the first maximum (row-major) + 0.5; confidence is the layer mean of the restart-mean maps (before any
softmax) at that pixel. The canvases are drawn so that each plausible slip (softmax before the restart mean, one
softmax over all layers, no softmax, the max over restarts) picks another pixel, which the test checks first.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidcorr
from vidcorr import Config
from vidcorr.method import locate as locate_module
from vidcorr.method.embeddings import Embeddings

S, R, L = 64, 2, 2
CFG = Config(image_size=S, restarts=R, crops=4, layers=(5, 6))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _argmax(m: np.ndarray) -> tuple[int, int]:
    return divmod(int(np.argmax(m)), S)  # (row, column) of the first maximum


def _per_layer_softmax(maps: np.ndarray) -> np.ndarray:
    return np.stack([_softmax(layer.ravel()).reshape(S, S) for layer in maps])


@pytest.fixture(scope="module")
def canvases():
    rng = np.random.default_rng(1)
    means = rng.normal(0, 1, (R, L, S, S)) * np.array([2.0, 1.0])[None, :, None, None] \
        + np.array([0.0, 3.0])[None, :, None, None]
    counts = rng.integers(0, 4, (R, S, S)).astype(np.float64)
    totals = means * counts[:, None]
    return totals, counts


def test_the_canvases_tell_the_orders_apart(canvases):
    totals, counts = canvases
    per_restart = np.where(counts[:, None] > 0, totals / np.maximum(counts[:, None], 1), 0.0)
    mean = per_restart.mean(axis=0)
    seed = _argmax(_per_layer_softmax(mean).mean(axis=0))
    slips = {
        "softmax before the restart mean": _argmax(np.mean([_per_layer_softmax(p) for p in per_restart], axis=0)
                                                   .mean(axis=0)),
        "one softmax over every layer": _argmax(_softmax(mean.ravel()).reshape(L, S, S).sum(axis=0)),
        "no softmax": _argmax(mean.mean(axis=0)),
        "max over restarts": _argmax(_per_layer_softmax(per_restart.max(axis=0)).mean(axis=0)),
    }
    assert all(pixel != seed for pixel in slips.values()), slips


def test_locate_combines_restarts_then_softmaxes_each_layer_then_averages_layers(tiny, canvases, monkeypatch):
    totals, counts = canvases

    def hand_made(ldm, model_image, contexts, keys, cfg, first_anchors, progress):
        assert len(keys) == R  # one point x two restarts, restarts inner
        return torch.from_numpy(totals).float(), torch.from_numpy(counts).float()

    monkeypatch.setattr(locate_module, "_accumulate", hand_made)
    embeddings = Embeddings(torch.zeros(1, R, 77, tiny.context_dim), np.array([[1.0, 1.0]]), (96, 48), CFG,
                            tiny.model_id, tiny.fingerprint())
    image = np.zeros((48, 96, 3), dtype=np.uint8)  # W = 96, H = 48: points un-squash by (96 / 64, 48 / 64)
    location = vidcorr.locate(tiny, image, embeddings, CFG, return_maps=True)

    # The seed's order, transcribed (float32 canvases as vidcorr keeps them, combined in float64 here).
    t32, c32 = totals.astype(np.float32), counts.astype(np.float32)
    per_restart = np.where(c32[:, None] > 0, t32 / np.maximum(c32[:, None], 1), 0).astype(np.float64)
    mean = per_restart.mean(axis=0)
    row, col = _argmax(_per_layer_softmax(mean).mean(axis=0))
    np.testing.assert_allclose(location.maps[0].numpy(), mean, rtol=1e-6, atol=1e-6)  # before any softmax
    np.testing.assert_array_equal(location.points_model, [[col + 0.5, row + 0.5]])
    np.testing.assert_allclose(location.points, [[(col + 0.5) * 96 / 64, (row + 0.5) * 48 / 64]], rtol=0, atol=0)
    assert float(location.confidence[0]) == pytest.approx(mean.mean(axis=0)[row, col], rel=1e-6)
    # Not the softmaxed value, nor one restart's, nor the max over the canvas.
    assert float(location.confidence[0]) != pytest.approx(_per_layer_softmax(mean).mean(axis=0)[row, col], rel=1e-3)
    assert float(location.confidence[0]) != pytest.approx(per_restart[0].mean(axis=0)[row, col], rel=1e-3)
    assert float(location.confidence[0]) < mean.mean(axis=0).max()
