import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from vidcorr.method.attention import AttentionCapture, head_slice, number_layers
from vidcorr.method.model import SD14_UNET_CONFIG

SEED_LAYERS_5_TO_8 = ["up_blocks.1.attentions.0", "up_blocks.1.attentions.1", "up_blocks.1.attentions.2",
                      "up_blocks.2.attentions.0"]
SIDES_AT_512 = [32, 32, 16, 16, 8, 16, 16, 16, 32, 32, 32]


def check_sd_numbering(layers):
    assert len(layers) == 11
    assert [layer.side for layer in layers] == SIDES_AT_512
    assert [layers[i].block for i in (5, 6, 7, 8)] == SEED_LAYERS_5_TO_8
    assert [layer.place for layer in layers] == ["down"] * 4 + ["mid"] + ["up"] * 6
    assert layers[4].block == "mid_block.attentions.0"


def test_full_sd14_unet_on_meta_device():
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD14_UNET_CONFIG)
    check_sd_numbering(number_layers(unet, 64))
    # 16 cross-attention layers in all; diffusers lists the mid block last, we number it by place.
    names = [n for n in unet.attn_processors if "attn2" in n]
    assert len(names) == 16 and names[-1].startswith("mid_block")


def test_tiny_has_sd_numbering_at_512_and_at_64(tiny):
    check_sd_numbering(tiny.layers(512))
    assert [layer.block for layer in tiny.layers(64)] == [layer.block for layer in tiny.layers(512)]
    assert [layer.side for layer in tiny.layers(64)] == [s // 8 for s in SIDES_AT_512]
    assert tiny.unet.config.attention_head_dim == 8 and tiny.latent_factor == 8


def test_heads_rule():
    assert head_slice(8, "second_half") == slice(4, 8)
    assert head_slice(8, "all") == slice(0, 8)


def _inputs(tiny, batch=2, size=64):
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(batch, 4, size // 8, size // 8, generator=gen)
    contexts = torch.randn(batch, 77, tiny.context_dim, generator=gen)
    return latents, contexts


def test_maps_equal_softmax_of_q_k_by_hand(tiny):
    latents, contexts = _inputs(tiny)
    layers = tiny.select_layers(64, [5, 8])
    seen = {}
    module = tiny.unet.get_submodule(layers[1].name)
    hook = module.register_forward_pre_hook(lambda mod, args, kwargs: seen.update(h=args[0] if args else
                                                                                kwargs["hidden_states"]),
                                            with_kwargs=True)
    try:
        maps = tiny.attention_maps(latents, 140, contexts, layers, heads="all", stop_early=True)
    finally:
        hook.remove()
    hidden = seen["h"]  # (B, Q, C)
    q = module.to_q(hidden).view(2, -1, 8, module.to_q.out_features // 8).transpose(1, 2)
    k = module.to_k(contexts).view(2, 77, 8, -1).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) * module.scale, dim=-1)  # (B, heads, Q, 77)
    side = layers[1].side
    assert maps[8].shape == (2, 8, side, side)
    torch.testing.assert_close(maps[8], probs[..., 1].reshape(2, 8, side, side), rtol=1e-5, atol=1e-6)


def test_second_half_is_the_last_four_heads_and_stop_early_changes_nothing(tiny):
    latents, contexts = _inputs(tiny)
    layers = tiny.select_layers(64, [5, 6, 7, 8])
    full = tiny.attention_maps(latents, 140, contexts, layers, heads="all", stop_early=False)
    early = tiny.attention_maps(latents, 140, contexts, layers, heads="second_half", stop_early=True)
    for i in (5, 6, 7, 8):
        assert early[i].shape[1] == 4
        torch.testing.assert_close(early[i], full[i][:, 4:], rtol=0, atol=1e-6)


def test_capture_keeps_the_unet_output_unchanged(tiny):
    latents, contexts = _inputs(tiny)
    t = torch.tensor([140, 140])
    layers = tiny.select_layers(64, [5, 6, 7, 8])
    out = {}
    capture = AttentionCapture(tiny.unet, layers)
    maps = capture.run(lambda: out.update(y=tiny.unet(latents, t, encoder_hidden_states=contexts).sample),
                       token_index=1, heads="second_half", stop_early=False)
    assert sorted(maps) == [5, 6, 7, 8]
    tiny.unet.set_attn_processor(AttnProcessor2_0())
    tiny._capture_key = None  # the LDM re-installs its processors on next use
    with torch.no_grad():
        stock = tiny.unet(latents, t, encoder_hidden_states=contexts).sample
    torch.testing.assert_close(out["y"], stock, rtol=1e-4, atol=1e-5)


def test_maps_are_differentiable_wrt_contexts(tiny):
    latents, contexts = _inputs(tiny)
    contexts.requires_grad_(True)
    maps = tiny.attention_maps(latents, 140, contexts, tiny.select_layers(64, [5, 8]))
    (maps[5].sum() + maps[8].sum()).backward()
    assert contexts.grad is not None and float(contexts.grad.abs().sum()) > 0


def test_unknown_layer_is_an_input_error(tiny):
    from vidcorr import InputError

    with pytest.raises(InputError, match=r"^layers \[11\] do not exist: this model has layers 0..10 at image size 64$"):
        tiny.select_layers(64, [5, 11])
