"""SD 1.4, SD 1.5, SD 2.1-base and SD 2.1 in their real architectures (meta device, no weights):
native resolution, the seed's layer numbering by place, the heads rule with per-block head counts,
the context width, linear projections; and a one-line refusal of what the numbering cannot read.

Expected values are written out by hand from the models' published UNet configs (diffusers'
`attention_head_dim` is the number of heads: 8 everywhere for SD 1.x; 5, 10, 20, 20 by level for
SD 2.x, i.e. 64 channels per head) and from the seed's rule (maps of side <= image_size / 16,
counted down -> mid -> up).
"""

import dataclasses

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

import vidcorr
from vidcorr import LDM, Config, ModelLoadError
from vidcorr.method.attention import head_slice
from vidcorr.method.model import TINY_UNET_CONFIG, TINY_VAE_CONFIG, random_components
from vidcorr.method.plan import prepare

# (place, block, side at the native resolution) of layers 0..10, per architecture.
SD_512 = [("down", "down_blocks.1.attentions.0", 32), ("down", "down_blocks.1.attentions.1", 32),
          ("down", "down_blocks.2.attentions.0", 16), ("down", "down_blocks.2.attentions.1", 16),
          ("mid", "mid_block.attentions.0", 8),
          ("up", "up_blocks.1.attentions.0", 16), ("up", "up_blocks.1.attentions.1", 16),
          ("up", "up_blocks.1.attentions.2", 16),
          ("up", "up_blocks.2.attentions.0", 32), ("up", "up_blocks.2.attentions.1", 32),
          ("up", "up_blocks.2.attentions.2", 32)]
SD_768 = [(place, block, side * 3 // 2) for place, block, side in SD_512]
HEADS_SD1 = [8] * 11
HEADS_SD2 = [10, 10, 20, 20, 20, 20, 20, 20, 10, 10, 10]

ARCHS = {
    # name: (native size, context width, layers, heads per layer, linear projections)
    "sd14": (512, 768, SD_512, HEADS_SD1, False),
    "sd15": (512, 768, SD_512, HEADS_SD1, False),
    "sd21-base": (512, 1024, SD_512, HEADS_SD2, True),
    "sd21": (768, 1024, SD_768, HEADS_SD2, True),
}


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request):
    return request.param, LDM.random_architecture(request.param, device="meta")


def test_native_resolution_and_context_width(arch):
    name, ldm = arch
    size, width, *_ = ARCHS[name]
    assert ldm.native_image_size == size
    assert ldm.context_dim == width
    assert ldm.device.type == "meta"
    # The paper config resolves to the native size; an explicit one is kept.
    assert prepare(ldm, Config()).image_size == size
    assert prepare(ldm, Config(image_size=256)).image_size == 256


def test_layer_numbering_by_place(arch):
    name, ldm = arch
    size, _, expected, *_ = ARCHS[name]
    layers = ldm.layers(size)
    assert [(layer.place, layer.block, layer.side) for layer in layers] == expected
    assert [layer.index for layer in layers] == list(range(11))
    assert all(layer.name == f"{layer.block}.transformer_blocks.0.attn2" for layer in layers)


def test_the_seeds_default_layers_on_each_architecture(arch):
    name, ldm = arch
    size = ARCHS[name][0]
    chosen = ldm.select_layers(size, Config().layers)
    low, high = size // 32, size // 16
    assert [(layer.block, layer.side) for layer in chosen] == [
        ("up_blocks.1.attentions.0", low), ("up_blocks.1.attentions.1", low), ("up_blocks.1.attentions.2", low),
        ("up_blocks.2.attentions.0", high)]


def test_heads_rule_with_per_block_head_counts(arch):
    name, ldm = arch
    size, width, _, heads, linear = ARCHS[name]
    for layer, count in zip(ldm.layers(size), heads, strict=True):
        attention = ldm.unet.get_submodule(layer.name)
        assert attention.heads == count
        # SD 2.x: 64 channels per head at every level; SD 1.x: 8 heads of channels / 8.
        assert attention.to_q.out_features // attention.heads == (64 if linear else attention.to_q.out_features // 8)
        assert attention.to_k.in_features == width  # the cross-attention reads the (77, width) context
        kept = range(count)[head_slice(count, "second_half")]
        assert list(kept) == list(range(count // 2, count))
        transformer = ldm.unet.get_submodule(layer.block)
        assert isinstance(transformer.proj_in, torch.nn.Linear if linear else torch.nn.Conv2d)


def test_unknown_architecture_is_one_line():
    with pytest.raises(vidcorr.InputError, match=r"^unknown architecture 'sdxl'; choose one of sd14, sd15, "
                                                 r"sd21-base, sd21$"):
        LDM.random_architecture("sdxl", device="meta")


# --- a forward through per-block heads and linear projections (a tiny SD 2.x-shaped model) ---------
TINY_SD2_UNET = {**TINY_UNET_CONFIG, "attention_head_dim": [1, 2, 4, 4], "use_linear_projection": True,
                 "cross_attention_dim": 48}


def test_maps_keep_the_second_half_of_each_blocks_heads():
    unet, vae = random_components(TINY_SD2_UNET, TINY_VAE_CONFIG, seed=0)
    ldm = LDM(unet, vae)
    assert (ldm.native_image_size, ldm.context_dim) == (64, 48)
    layers = ldm.layers(64)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    contexts = torch.randn(2, 77, 48, generator=torch.Generator().manual_seed(1))
    full = ldm.attention_maps(latents, 140, contexts, layers, heads="all", stop_early=False)
    half = ldm.attention_maps(latents, 140, contexts, layers, heads="second_half", stop_early=False)
    # Heads by layer: down_blocks.1 (2), down_blocks.2 (4), mid (4), up_blocks.1 (4), up_blocks.2 (2).
    assert [full[layer.index].shape[1] for layer in layers] == [2, 2, 4, 4, 4, 4, 4, 4, 2, 2, 2]
    for layer in layers:
        count = full[layer.index].shape[1]
        assert torch.equal(half[layer.index], full[layer.index][:, count // 2:])


def test_tiny_resolves_to_64_and_outputs_record_it(tiny, tmp_path):
    from conftest import random_image

    cfg = Config(num_steps=0, restarts=1, crops=1)
    image = random_image(40, 56)
    embeddings = vidcorr.fit(tiny, image, np.array([[20.0, 20.0]]), cfg)
    assert embeddings.config.image_size == 64
    assert vidcorr.Embeddings.load(embeddings.save(tmp_path / "e.safetensors")).config.image_size == 64
    tracks = vidcorr.track(tiny, [image, image], np.array([[0.0, 20.0, 20.0]]), cfg)
    assert tracks.meta["config"]["image_size"] == 64
    from vidcorr.eval.pairs.runner import run_setup

    assert run_setup("spair", "test", tiny, cfg)["config"]["image_size"] == 64
    # Embeddings fitted at the native size are read at the native size without restating it.
    assert vidcorr.locate(tiny, image, embeddings).points.shape == (1, 2)


# --- what the numbering cannot read -----------------------------------------------------------------
def _refusal(**changes) -> str:
    with torch.device("meta"):
        unet = UNet2DConditionModel(**{**TINY_UNET_CONFIG, **changes})
        vae = AutoencoderKL(**TINY_VAE_CONFIG)
    with pytest.raises(ModelLoadError) as caught:
        LDM(unet, vae)
    message = str(caught.value)
    assert "\n" not in message
    return message


SUPPORTED = "vidcorr handles Stable Diffusion 1.x and 2.x UNets (e.g. SD 1.4, SD 1.5, SD 2.1-base, SD 2.1)"


def test_an_inpainting_unet_is_refused_in_one_line():
    assert _refusal(in_channels=9) == (
        "unsupported UNet architecture: in_channels is 9, not the VAE's 4 latent channels (an inpainting, depth or "
        f"upscaling UNet?); {SUPPORTED}")


def test_a_unet_without_cross_attention_is_refused_in_one_line():
    assert _refusal(down_block_types=["DownBlock2D"] * 4, up_block_types=["UpBlock2D"] * 4,
                    mid_block_type="UNetMidBlock2D") == (
        "unsupported UNet architecture: no cross-attention layer at or below 1/16 of the input resolution, which "
        f"the seed's numbering counts; {SUPPORTED}")


def test_added_conditioning_is_refused_in_one_line():
    message = _refusal(addition_embed_type="text_time", addition_time_embed_dim=8,
                       projection_class_embeddings_input_dim=8 * 6 + 32)
    assert message == ("unsupported UNet architecture: addition_embed_type='text_time' needs added conditioning "
                       f"(SDXL's text_time?); {SUPPORTED}")


def test_the_paper_config_is_unchanged_on_sd14():
    resolved = prepare(LDM.random_architecture("sd14", device="meta"), Config())
    assert dataclasses.replace(resolved, image_size=None) == Config()
    assert resolved.image_size == 512
