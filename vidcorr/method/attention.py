"""Cross-attention capture through diffusers attention processors.

The UNet's own forward is never copied: capture processors are installed with
`unet.set_attn_processor` on the selected cross-attention layers only, every other layer keeps the
fused scaled-dot-product processor, and when the deepest selected layer has been captured the
processor raises `StopForward`, which `AttentionCapture.run` catches. Nothing after that layer can change
the captured maps, so skipping it changes no number (the "stop early" lever: it keeps the seed's math).

Layer numbering follows the seed (prompt-to-prompt's AttentionStore): cross-attention calls are
numbered in call order down -> mid -> up, counting only maps whose query grid side is at most
image_size / 16 (the seed's `attn.shape[1] <= 32 ** 2` at 512). For SD 1.x at 512 that gives 11:
down 32x32 (0, 1), down 16x16 (2, 3), mid 8x8 (4), up 16x16 (5, 6, 7), up 32x32 (8, 9, 10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from vidcorr.errors import InputError


@dataclass(frozen=True)
class CrossAttentionLayer:
    """One numbered cross-attention layer.

    index: the seed's layer number. name: the attention module's path in the UNet
    (e.g. `up_blocks.1.attentions.0.transformer_blocks.0.attn2`). block: the Transformer2D block
    holding it (e.g. `up_blocks.1.attentions.0`). place: `down`, `mid` or `up`. side: query grid
    side (latent pixels) at the image size it was numbered for.
    """

    index: int
    name: str
    block: str
    place: str
    side: int


def number_layers(unet: torch.nn.Module, latent_size: int) -> list[CrossAttentionLayer]:
    """The seed's numbering of `unet`'s cross-attention layers for a `latent_size` input.

    Walks the module structure (no forward, so it works on the `meta` device): down blocks in order,
    then the mid block, then the up blocks, tracking the spatial size through down- and upsamplers.
    Only layers whose side is <= latent_size / 2 (image_size / 16) are numbered.
    """
    found: list[tuple[str, str, str, int]] = []

    def visit(block: torch.nn.Module, prefix: str, place: str, side: int) -> None:
        for j, transformer in enumerate(getattr(block, "attentions", None) or []):
            for k, tblock in enumerate(getattr(transformer, "transformer_blocks", [])):
                if getattr(tblock, "attn2", None) is not None:
                    found.append((f"{prefix}.attentions.{j}.transformer_blocks.{k}.attn2",
                                  f"{prefix}.attentions.{j}", place, side))

    # torch types nn.Module.__getattr__ as Tensor | Module; these are the UNet's submodules.
    down_blocks = cast(torch.nn.ModuleList, unet.down_blocks)
    up_blocks = cast(torch.nn.ModuleList, unet.up_blocks)
    side = latent_size
    for i, block in enumerate(down_blocks):
        visit(block, f"down_blocks.{i}", "down", side)
        if getattr(block, "downsamplers", None):
            side = (side + 1) // 2  # stride-2 conv with padding 1
    if getattr(unet, "mid_block", None) is not None:
        visit(cast(torch.nn.Module, unet.mid_block), "mid_block", "mid", side)
    for i, block in enumerate(up_blocks):
        visit(block, f"up_blocks.{i}", "up", side)
        if getattr(block, "upsamplers", None):
            side *= 2

    limit = latent_size // 2
    kept = [entry for entry in found if entry[3] <= limit]
    return [CrossAttentionLayer(i, name, block, place, s) for i, (name, block, place, s) in enumerate(kept)]


def head_slice(num_heads: int, rule: str) -> slice:
    """Heads kept by a rule: `second_half` (the seed's attn[h // 2:]) or `all`."""
    if rule == "second_half":
        return slice(num_heads // 2, num_heads)
    if rule == "all":
        return slice(0, num_heads)
    raise InputError(f"unknown heads rule {rule!r}; choose 'second_half' or 'all'")


class StopForward(Exception):
    """Raised by the capture processor after the deepest needed layer; caught by `AttentionCapture.run`."""


class CaptureSession:
    """What one capture-enabled forward collects: token maps per layer, and where to stop.

    maps[index]: (B, heads_kept, side, side) attention probabilities of `token_index`.
    """

    def __init__(self, token_index: int, heads: str, stop_after: int | None) -> None:
        self.token_index = token_index
        self.heads = heads
        self.stop_after = stop_after
        self.maps: dict[int, torch.Tensor] = {}


class CaptureProcessor:
    """Attention processor for one numbered cross-attention layer.

    With no active session (any forward outside `AttentionCapture.run`) it runs the fused SDPA path, so
    the UNet behaves as stock. With a session it computes the attention probabilities explicitly
    (the same steps as diffusers' `AttnProcessor`), records the selected heads' map of one token and,
    if this is the session's last layer, stops the forward.
    """

    def __init__(self, index: int, fused: Any) -> None:
        self.index = index
        self.fused = fused
        self.session: CaptureSession | None = None

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        session = self.session
        if session is None:
            return self.fused(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if encoder_hidden_states is None or attn.spatial_norm is not None or attn.group_norm is not None:
            raise RuntimeError(f"layer {self.index} is not a plain cross-attention layer")

        residual = hidden_states
        image_shape = hidden_states.shape if hidden_states.ndim == 4 else None  # (B, C, H, W) input
        if image_shape is not None:
            batch, channels, height, width = image_shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch_size, num_tokens, _ = encoder_hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, num_tokens, batch_size)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)

        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, attention_mask)  # (B * heads, Q, tokens)

        side = int(round(probs.shape[1] ** 0.5))
        per_head = probs.view(batch_size, attn.heads, probs.shape[1], num_tokens)
        kept = per_head[:, head_slice(attn.heads, session.heads), :, session.token_index]
        session.maps[self.index] = kept.reshape(batch_size, -1, side, side)
        if session.stop_after == self.index:
            raise StopForward

        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if image_shape is not None:
            out = out.transpose(-1, -2).reshape(image_shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class AttentionCapture:
    """Capture processors installed once on a UNet for a fixed set of numbered layers.

    `explicit_everywhere=True` gives every other attention layer diffusers' explicit (unfused)
    processor, as the seed's prompt-to-prompt controller does; the reference path uses it.
    """

    def __init__(self, unet: torch.nn.Module, layers: Sequence[CrossAttentionLayer],
                 explicit_everywhere: bool = False) -> None:
        self.layers = {layer.name: layer for layer in layers}
        self.explicit_everywhere = explicit_everywhere
        self.processors: dict[int, CaptureProcessor] = {}
        fused = AttnProcessor2_0()
        table: dict[str, Any] = {}
        # diffusers' UNet API, seen through torch's nn.Module.__getattr__ (Tensor | Module) by mypy.
        processors = cast(dict[str, Any], unet.attn_processors)
        set_processor = cast(Callable[[dict[str, Any]], None], unet.set_attn_processor)
        for name in processors:  # keys end in ".processor"
            module_name = name.removesuffix(".processor")
            layer = self.layers.get(module_name)
            if layer is not None:
                proc = CaptureProcessor(layer.index, fused)
                self.processors[layer.index] = proc
                table[name] = proc
            else:
                table[name] = AttnProcessor() if explicit_everywhere else fused
        missing = set(self.layers) - {n.removesuffix(".processor") for n in table}
        if missing:
            raise RuntimeError(f"layers not found in the UNet: {sorted(missing)}")
        set_processor(table)

    def run(self, forward: Callable[[], Any], token_index: int, heads: str,
            stop_early: bool) -> dict[int, torch.Tensor]:
        """Run `forward` (one UNet call) and return {layer index: (B, heads_kept, s, s)} maps."""
        stop_after = max(self.processors) if stop_early else None
        session = CaptureSession(token_index, heads, stop_after)
        for proc in self.processors.values():
            proc.session = session
        try:
            forward()
        except StopForward:
            pass
        finally:
            for proc in self.processors.values():
                proc.session = None
        return session.maps


def upsample(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (align_corners=False) resize of (..., s, s) maps to (..., size, size)."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, size, size)


def layer_maps(maps: dict[int, torch.Tensor], indices: Sequence[int], size: int,
               heads_first: bool = True) -> torch.Tensor:
    """Captured maps -> (B, L, size, size): each layer's heads averaged and upsampled to `size`.

    heads_first=True averages the heads before upsampling (bilinear resizing is linear, so this is
    the same map at a fraction of the cost); False upsamples every head, then averages, as the seed.
    """
    if heads_first:
        return torch.stack([upsample(maps[i].mean(dim=1), size) for i in indices], dim=1)
    return torch.stack([upsample(maps[i], size).mean(dim=1) for i in indices], dim=1)
