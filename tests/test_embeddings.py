import numpy as np
import pytest
import torch
from conftest import random_image

import vidcorr
from vidcorr import Config, Embeddings, EmbeddingsMismatchError, InputError


@pytest.fixture(scope="module")
def embeddings(tiny):
    cfg = Config(image_size=64, num_steps=1, restarts=2)
    return vidcorr.fit(tiny, random_image(48, 80), np.array([[10.0, 20.0], [30.5, 40.5]]), cfg)


def test_save_load_round_trip(tmp_path, embeddings):
    path = embeddings.save(tmp_path / "e.safetensors")
    loaded = Embeddings.load(path)
    assert torch.equal(loaded.tensors, embeddings.tensors)
    np.testing.assert_array_equal(loaded.points, embeddings.points)
    assert loaded.config == embeddings.config
    assert (loaded.model_id, loaded.model_fingerprint, loaded.image_size_wh) == ("tiny", embeddings.model_fingerprint,
                                                                               (80, 48))
    assert not list(tmp_path.glob(".*partial*"))
    # The precision and the skipped steps per point travel with the file; subsets keep theirs.
    assert (embeddings.precision, embeddings.skipped_steps.tolist()) == ("float32", [0, 0])
    assert (loaded.precision, loaded.skipped_steps.tolist()) == ("float32", [0, 0])
    marked = Embeddings(embeddings.tensors, embeddings.points, (80, 48), embeddings.config, "tiny",
                        embeddings.model_fingerprint, precision="autocast-float16", skipped_steps=[3, 0])
    again = Embeddings.load(marked.save(tmp_path / "m.safetensors"))
    assert (again.precision, again.skipped_steps.tolist(), again.total_skipped_steps) == ("autocast-float16", [3, 0], 3)
    assert again.subset([1, 0]).skipped_steps.tolist() == [0, 3]


def test_reused_embeddings_locate_like_fresh_ones(tmp_path, tiny, embeddings):
    target = random_image(40, 40, seed=3)
    loaded = Embeddings.load(embeddings.save(tmp_path / "e.safetensors"))
    a = vidcorr.locate(tiny, target, embeddings, embeddings.config.replace(crops=5))
    b = vidcorr.locate(tiny, target, loaded, embeddings.config.replace(crops=5))
    np.testing.assert_array_equal(a.points, b.points)


def test_another_model_is_refused(embeddings):
    other = vidcorr.LDM.tiny(seed=1)
    with pytest.raises(EmbeddingsMismatchError, match=r"^embeddings were fitted with model 'tiny' \(fingerprint "):
        vidcorr.locate(other, random_image(40, 40), embeddings)


@pytest.mark.parametrize(("change", "message"), [
    ({"layers": (8, 9)}, "embeddings were fitted with layers=5,6,7,8, this run uses layers=8,9"),
    ({"image_size": 128}, "embeddings were fitted with image_size=64, this run uses image_size=128"),
    ({"heads": "all"}, "embeddings were fitted with heads=second_half, this run uses heads=all"),
])
def test_another_layer_set_or_size_is_refused(tiny, embeddings, change, message):
    with pytest.raises(EmbeddingsMismatchError, match="^" + message):
        vidcorr.locate(tiny, random_image(40, 40), embeddings, embeddings.config.replace(**change))


def test_not_an_embeddings_file(tmp_path):
    (tmp_path / "x.safetensors").write_text("hello")
    with pytest.raises(InputError, match=r"is not a safetensors embeddings file"):
        Embeddings.load(tmp_path / "x.safetensors")
    with pytest.raises(InputError, match=r"^embeddings file '.*missing.safetensors' does not exist$"):
        Embeddings.load(tmp_path / "missing.safetensors")
