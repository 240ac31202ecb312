"""The joint fit: one embedding per point fitted on every frame where the point is labelled.

The K = 2 expectation is a loop written here on the seed's transcription (tests/test_seed_method.py: one
optimize_prompt step's loss, its crop, encode, scheduler, UNet store and MSE on raw diffusers parts), extended by the
one thing the joint fit adds: each Adam step averages the seed's losses of the point's labels. Each label draws from
the stream keyed by (point, label frame, restart), vidcorr's contract; a point with one label keeps the single-image
key.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_image
from test_seed_method import S, Seed, initial_embedding

import vidcorr
from vidcorr import Config, PointLabels
from vidcorr.method import streams

CFG = Config(image_size=S, num_steps=3, restarts=2, crops=4, lr=0.05, sigma=6.0, flip_prob=0.5)
FRAMES = {t: random_image(S, S, seed=10 + t) for t in range(6)}
# Point "a" on frames 1 and 4, point "b" on frames 4 and 5 (frame 4 is shared by both).
LABELS = PointLabels(("a", "b"), (np.array([[1, 10.5, 20.5], [4, 40.0, 12.25]]),
                                  np.array([[4, 50.5, 52.5], [5, 30.0, 33.0]])))


def _joint_fit_by_hand(seed: Seed, rows: np.ndarray, pid: int, r: int, cfg: Config) -> torch.Tensor:
    """One point, one restart: every step the mean of its labels' seed losses, one Adam step."""
    context = initial_embedding(pid, r, cfg, 32).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([context], lr=cfg.lr)
    labels = [(FRAMES[int(t)].astype(np.float32) / 255.0, torch.tensor([x, y]) / S,
               streams.stream(cfg.seed, streams.FIT, pid, int(t), r)) for t, x, y in rows]
    for _ in range(cfg.num_steps):
        losses = [seed.step_loss(image, pixel, context, g, cfg) for image, pixel, g in labels]
        loss = sum(losses) / len(losses)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return context.detach()[0]


@pytest.fixture(scope="module")
def seed() -> Seed:
    return Seed()


def test_two_labels_fit_the_mean_of_the_seeds_losses_on_both_frames(tiny, seed):
    expected = torch.stack([torch.stack([_joint_fit_by_hand(seed, rows, pid, r, CFG) for r in range(CFG.restarts)])
                            for pid, rows in enumerate(LABELS.labels)])
    fitted = vidcorr.fit_labels(tiny, FRAMES, LABELS, CFG)
    torch.testing.assert_close(fitted.tensors, expected, rtol=1e-4, atol=1e-5)
    start = torch.stack([torch.stack([initial_embedding(p, r, CFG, 32)[0] for r in range(2)]) for p in range(2)])
    assert float((expected - start).abs().max()) > 0.1  # the embeddings moved
    # Micro-batching splits a point's labels over UNet calls: the same embeddings to fp32 rounding.
    one_at_a_time = vidcorr.fit_labels(tiny, FRAMES, LABELS, CFG.replace(max_batch=1))
    torch.testing.assert_close(one_at_a_time.tensors, expected, rtol=1e-4, atol=1e-5)
    # The result records every label; points and frames are the first labels.
    assert fitted.labels is LABELS
    np.testing.assert_array_equal(fitted.frames, [1, 4])
    np.testing.assert_array_equal(fitted.points, [[10.5, 20.5], [50.5, 52.5]])


def test_the_mean_is_not_one_label_alone(tiny):
    # Fitting "a" on each of its labels alone gives other embeddings than fitting it on both.
    both = vidcorr.fit_labels(tiny, FRAMES, LABELS, CFG).tensors[0]
    for t, x, y in LABELS.labels[0]:
        alone = vidcorr.fit(tiny, FRAMES[int(t)], np.array([[x, y]]), CFG).tensors[0]
        assert float((both - alone).abs().max()) > 1e-3


def test_one_label_is_todays_fit_bit_for_bit(tiny):
    points = np.array([[10.5, 20.5], [40.0, 52.25], [3.0, 60.0]])
    single = PointLabels.from_queries(np.column_stack([np.full(3, 2), points]))
    today = vidcorr.fit(tiny, FRAMES[2], points, CFG, point_ids=[7, 8, 9])
    joint = vidcorr.fit_labels(tiny, FRAMES, single, CFG, point_ids=[7, 8, 9])
    assert torch.equal(joint.tensors, today.tensors)


def test_one_label_points_beside_several_label_points_are_todays_fit(tiny):
    # One label on frame 3, two on frames 0 and 5, one on frame 5, in one call; one sample per UNet call so
    # that no batch layout enters the comparison.
    cfg = CFG.replace(max_batch=1)
    mixed = PointLabels(("p", "q", "r"), (np.array([[3, 20.5, 30.5]]), np.array([[0, 5.0, 6.0], [5, 60.0, 61.0]]),
                                          np.array([[5, 33.5, 9.5]])))
    joint = vidcorr.fit_labels(tiny, FRAMES, mixed, cfg, point_ids=[4, 5, 6])
    assert torch.equal(joint.tensors[0], vidcorr.fit(tiny, FRAMES[3], np.array([[20.5, 30.5]]), cfg,
                                                     point_ids=[4]).tensors[0])
    assert torch.equal(joint.tensors[2], vidcorr.fit(tiny, FRAMES[5], np.array([[33.5, 9.5]]), cfg,
                                                     point_ids=[6]).tensors[0])


def test_fit_queries_takes_labels_and_measures_the_confidence_scale_at_each(tiny):
    # One sample per UNet call: a batch's rounding (1e-8) could move a near-tied argmax of this barely fitted model.
    cfg = CFG.replace(num_steps=1, crops=2, max_batch=1)
    frames = [FRAMES[t] for t in range(6)]
    emb = vidcorr.fit_queries(tiny, frames, LABELS, cfg)
    assert torch.equal(emb.tensors, vidcorr.fit_labels(tiny, FRAMES, LABELS, cfg).tensors)
    per_label = emb.extra["label_ref_attention"]
    assert [len(a) for a in per_label] == [2, 2]
    # Each label's scale is the located attention on its frame from its position, as for one query ...
    for n, rows in enumerate(LABELS.labels):
        for k, (t, x, y) in enumerate(rows):
            alone = vidcorr.locate(tiny, FRAMES[int(t)], emb.subset([n]), cfg, stream_key=int(t), point_ids=[n],
                                   anchors_xy=np.array([[x, y]]))
            assert per_label[n][k] == pytest.approx(float(alone.confidence[0]), rel=1e-6)
    # ... and a point's scale is the mean over its labels.
    np.testing.assert_allclose(emb.extra["ref_attention"], [np.mean(a) for a in per_label], rtol=1e-12)


def test_labels_survive_the_embeddings_file(tiny, tmp_path):
    emb = vidcorr.fit_labels(tiny, FRAMES, LABELS, CFG.replace(num_steps=1))
    again = vidcorr.Embeddings.load(emb.save(tmp_path / "e.safetensors"))
    assert again.labels is not None and again.labels.ids == ("a", "b")
    for mine, theirs in zip(again.labels.labels, LABELS.labels, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "e.safetensors"), framework="pt") as handle:
        assert handle.metadata()["labels"] == ('{"ids": ["a", "b"], "labels": [[[1.0, 10.5, 20.5], '
                                              '[4.0, 40.0, 12.25]], [[4.0, 50.5, 52.5], [5.0, 30.0, 33.0]]]}')
    assert again.subset([1]).labels.ids == ("b",)


def test_bad_labels_are_one_line_errors(tiny):
    frames = [FRAMES[t] for t in range(3)]
    with pytest.raises(vidcorr.InputError, match=r"^point b has a label on frame 4, outside the video "
                                                 r"\(frames 0\.\.2\)$"):
        vidcorr.fit_queries(tiny, frames, PointLabels(("b",), (np.array([[0, 1.0, 1.0], [4, 2.0, 2.0]]),)), CFG)
    with pytest.raises(vidcorr.InputError, match=r"^point b \(65, 2\) on frame 1 is outside the frame "
                                                 r"\(64x64 pixels\)$"):
        vidcorr.fit_queries(tiny, frames, PointLabels(("b",), (np.array([[0, 1.0, 1.0], [1, 65.0, 2.0]]),)), CFG)
    with pytest.raises(vidcorr.InputError, match=r"^no image given for labelled frame 5$"):
        vidcorr.fit_labels(tiny, {1: FRAMES[1], 4: FRAMES[4]}, LABELS, CFG)
    with pytest.raises(vidcorr.InputError, match=r"^labelled frames differ in size: 64x48, 64x64$"):
        vidcorr.fit_labels(tiny, {**FRAMES, 4: random_image(48, 64)}, LABELS, CFG)
