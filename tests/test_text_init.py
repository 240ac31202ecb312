"""--init-prompt with a tiny CLIP text encoder and a hand-made BPE vocabulary."""

import json

import numpy as np
import pytest
import torch
from conftest import random_image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

import vidcorr
from vidcorr import LDM, Config, InputError
from vidcorr.method.model import TINY_UNET_CONFIG, TINY_VAE_CONFIG, random_components
from vidcorr.method.text_init import prompt_embedding


def make_text_model(folder):
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "c": 3, "a": 4, "t</w>": 5, "ca": 6, "cat</w>": 7}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    torch.manual_seed(0)
    encoder = CLIPTextModel(CLIPTextConfig(vocab_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                           num_attention_heads=4, max_position_embeddings=77, eos_token_id=1,
                                           bos_token_id=0, pad_token_id=1))
    return tokenizer, encoder


def test_prompt_initialises_every_restart(tmp_path):
    tokenizer, encoder = make_text_model(tmp_path)
    assert tokenizer("a cat").input_ids == [0, 2, 7, 1]
    unet, vae = random_components(TINY_UNET_CONFIG, TINY_VAE_CONFIG)
    ldm = LDM(unet, vae, text_encoder=encoder, tokenizer=tokenizer)
    expected = prompt_embedding(ldm, "a cat")
    assert expected.shape == (77, 32)
    cfg = Config(image_size=64, num_steps=0, restarts=3, init_prompt="a cat")
    emb = vidcorr.fit(ldm, random_image(32, 32), np.array([[5.0, 5.0]]), cfg)
    for r in range(3):
        torch.testing.assert_close(emb.tensors[0, r], expected)
    noise_start = vidcorr.fit(ldm, random_image(32, 32), np.array([[5.0, 5.0]]), cfg.replace(init_prompt=None))
    assert not torch.allclose(noise_start.tensors[0, 0], expected)


def test_text_encoder_is_loaded_from_the_model_folder_only_when_asked(tmp_path):
    tokenizer, encoder = make_text_model(tmp_path)
    unet, vae = random_components(TINY_UNET_CONFIG, TINY_VAE_CONFIG)
    unet.save_pretrained(tmp_path / "sd" / "unet")
    vae.save_pretrained(tmp_path / "sd" / "vae")
    tokenizer.save_pretrained(tmp_path / "sd" / "tokenizer")
    encoder.save_pretrained(tmp_path / "sd" / "text_encoder")
    ldm = LDM.from_pretrained(tmp_path / "sd")
    assert ldm.text_encoder is None
    torch.testing.assert_close(prompt_embedding(ldm, "a cat"),
                               prompt_embedding(LDM(*random_components(TINY_UNET_CONFIG, TINY_VAE_CONFIG),
                                                    text_encoder=encoder, tokenizer=tokenizer), "a cat"))


def test_no_text_encoder_is_a_clear_error(tiny):
    with pytest.raises(InputError, match=r"^--init-prompt needs a model with a text encoder; 'tiny' has none"):
        prompt_embedding(tiny, "a cat")
