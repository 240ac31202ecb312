"""Optional start of the embeddings from a prompt's CLIP encoding (Config.init_prompt).

The seed always starts from N(0, 1) noise; this is an opt-in. The text encoder and tokenizer are
loaded only here, only when asked, from the model's own folder or hub id (subfolders text_encoder/
and tokenizer/), unless the LDM was built with them.
"""

from __future__ import annotations

import torch

from vidcorr.errors import InputError, ModelLoadError
from vidcorr.method.model import LDM


def prompt_embedding(ldm: LDM, prompt: str, num_tokens: int = 77) -> torch.Tensor:
    """(num_tokens, D) float32: the text encoder's last hidden state for `prompt`, padded to length."""
    if ldm.text_encoder is None or ldm.tokenizer is None:
        if ldm.source is None:
            raise InputError(f"--init-prompt needs a model with a text encoder; {ldm.model_id!r} has none "
                             "(use a diffusers Stable Diffusion folder or hub id)")
        # transformers loads only for an init prompt (the seed's method never needs the text encoder)
        from transformers import CLIPTextModel, CLIPTokenizer

        try:
            ldm.tokenizer = CLIPTokenizer.from_pretrained(ldm.source, subfolder="tokenizer")
            ldm.text_encoder = CLIPTextModel.from_pretrained(ldm.source, subfolder="text_encoder")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the text encoder of {ldm.model_id!r} for --init-prompt: "
                                 f"{str(exc).splitlines()[0]}") from None
        ldm.text_encoder.requires_grad_(False).eval()
    tokens = ldm.tokenizer([prompt], padding="max_length", max_length=num_tokens, truncation=True,
                           return_tensors="pt")
    encoder = ldm.text_encoder
    device = next(encoder.parameters()).device
    with torch.no_grad():
        hidden = encoder(tokens.input_ids.to(device))[0][0]
    if hidden.shape != (num_tokens, ldm.context_dim):
        raise InputError(f"the text encoder gives {tuple(hidden.shape)} embeddings, the UNet takes "
                         f"({num_tokens}, {ldm.context_dim})")
    return hidden.float().cpu()
