import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vidcorr import LDM, ModelLoadError
from vidcorr.method.model import TINY_UNET_CONFIG, TINY_VAE_CONFIG, random_components


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sd")
    unet, vae = random_components(TINY_UNET_CONFIG, TINY_VAE_CONFIG, seed=0)
    unet.save_pretrained(folder / "unet")
    vae.save_pretrained(folder / "vae")
    return folder


def test_local_folder_gives_the_same_maps_as_the_in_memory_model(tiny, tiny_folder):
    loaded = LDM.from_pretrained(tiny_folder)
    assert loaded.model_id == str(tiny_folder)
    assert loaded.fingerprint() == tiny.fingerprint()
    assert loaded.vae.decoder is None and not any(p.requires_grad for p in loaded.unet.parameters())
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 64, 64, generator=gen)
    contexts = torch.randn(2, 77, 32, generator=gen)
    layers = tiny.select_layers(64, [5, 6, 7, 8])
    a = tiny.attention_maps(tiny.encode(image), 140, contexts, layers)
    b = loaded.attention_maps(loaded.encode(image), 140, contexts, layers)
    # Same weights; the session's `tiny` may carry other (equivalent) processors from earlier tests.
    for i in (5, 6, 7, 8):
        torch.testing.assert_close(a[i], b[i], rtol=0, atol=1e-6)


def test_fp16_request_falls_back_to_full_precision_files(tiny_folder):
    loaded = LDM.from_pretrained(tiny_folder, dtype=torch.float16)
    assert loaded.dtype == torch.float16


def test_a_folder_that_is_not_diffusers_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match=r"is not a diffusers Stable Diffusion folder \(it needs unet/ and vae/"):
        LDM.from_pretrained(tmp_path)


def test_offline_uncached_id_is_one_line_without_traceback(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("VIDCORR_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "vidcorr_cli", "match", "a.png", "b.png", "--points", "5,5",
                             "--model", "nobody/not-cached-anywhere"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot load Stable Diffusion weights 'nobody/not-cached-anywhere': they are not in the local Hugging "
        "Face cache and the hub is off (HF_HUB_OFFLINE=1); download them once with `hf download "
        "nobody/not-cached-anywhere` (then HF_HUB_OFFLINE=1 works), or use a local diffusers folder (with unet/ and "
        "vae/) instead"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "a-b_vidcorr").exists()
