"""A tiny random SDXL pipeline saved as a diffusers folder: built offline from diffusers' and transformers' classes
(SDXL's two text encoders, 32 wide each, so its conditioning is 64 wide where SDXL's is 2048; an 8× VAE with SDXL's
0.13025), with SD-1.5's CLIP vocabulary as both tokenizers."""

from __future__ import annotations

from pathlib import Path

import torch

from sing_core.text.bpe_vocab import read_bpe_gz, write_tokenizer_folder
from sing_core.text.vocab_sources import package_bpe_gz_files

TEXT_WIDTH = 32  # each encoder's; the conditioning is twice that


def write_tiny_sdxl(folder: Path) -> Path:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tokenizer_dir = write_tokenizer_folder(read_bpe_gz(package_bpe_gz_files()[0]), folder.parent / "tokenizer-src")
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, model_max_length=77, pad_token="<|endoftext|>")
    text = {"vocab_size": 49408, "hidden_size": TEXT_WIDTH, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 77}
    torch.manual_seed(0)
    text_1 = CLIPTextModel(CLIPTextConfig(**text)).eval()
    text_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text, projection_dim=TEXT_WIDTH, hidden_act="gelu")).eval()
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, norm_num_groups=8, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.13025, layers_per_block=1,
    ).eval()
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        norm_num_groups=16, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4), use_linear_projection=True,
        cross_attention_dim=2 * TEXT_WIDTH, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + TEXT_WIDTH,
    ).eval()
    scheduler = EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                                 beta_schedule="scaled_linear")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_1, text_encoder_2=text_2,
                                               tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
                                               scheduler=scheduler)
    pipe.save_pretrained(folder)
    return folder
