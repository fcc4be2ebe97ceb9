"""The text kind a module records follows the encoder it was trained with: SD-2's OpenCLIP ViT-H from a transformers
text_encoder/ folder (a tiny gelu stand-in here) makes a One More Step-style module of text kind openclip_h."""

from __future__ import annotations

import torch
from train_helpers import write_latents

from sing_core import load_module
from sing_core.cli import main
from sing_core.kinds import ModuleKind
from sing_core.text.bpe_vocab import read_bpe_gz, write_tokenizer_folder
from sing_core.text.vocab_sources import package_bpe_gz_files

WIDTH = 48


def write_sd2_text_folder(folder):
    """SD-2's layout: text_encoder/ (a transformers CLIPTextModel with gelu) beside tokenizer/."""
    from transformers import CLIPTextConfig, CLIPTextModel

    write_tokenizer_folder(read_bpe_gz(package_bpe_gz_files()[0]), folder / "tokenizer")
    torch.manual_seed(3)
    CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=WIDTH, intermediate_size=37, num_hidden_layers=2,
                                 num_attention_heads=4, max_position_embeddings=77, hidden_act="gelu")
                  ).save_pretrained(folder / "text_encoder")
    return folder / "text_encoder"


def test_a_v_module_on_a_vit_h_style_encoder_is_an_oms_openclip_h_module(tmp_path):
    text_encoder = write_sd2_text_folder(tmp_path / "sd2")
    latents = write_latents(tmp_path / "latents.safetensors")
    assert main(["train", "--data", str(latents), "--out", str(tmp_path / "run"), "--preset", "tiny", "--target", "v",
                 "--text-encoder", str(text_encoder), "--steps", "2", "--batch-size", "4", "--device", "cpu",
                 "--threads", "1"]) == 0
    module = load_module(tmp_path / "run" / "singdiffusion.safetensors")
    assert module.kind == ModuleKind("oms", "sd", "openclip_h")
    assert module.cross_attention_dim == WIDTH
