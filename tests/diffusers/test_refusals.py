"""What cannot be served is refused before any work, with a message that names the cause and the fix."""

from __future__ import annotations

import diffusers
import pytest
import torch
from tiny_pipes import release_module, sdxl_pipeline, seeded, vae

import sing_diffusers
from sing_diffusers import SingDiffusersError

PROMPT = "solid black background"


def refused(pipe, module, match: str, **kwargs):
    with pytest.raises(SingDiffusersError, match=match):
        sing_diffusers.start_latents(pipe, module, kwargs.pop("prompt", PROMPT), num_inference_steps=4, **kwargs)


def test_an_sdxl_pipeline(module, tokenizer_dir):
    refused(sdxl_pipeline(tokenizer_dir), module,
            r"StableDiffusionXLPipeline: the module predicts SD-1.x/2.x latents and the checkpoint is SDXL.*choose an "
            r"SDXL module")


def test_an_sd3_pipeline(module):
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        caption_projection_dim=16, joint_attention_dim=32, pooled_projection_dim=16, out_channels=16)
    pipe = diffusers.StableDiffusion3Pipeline(
        transformer=transformer, scheduler=diffusers.FlowMatchEulerDiscreteScheduler(), vae=vae(latent_channels=16),
        text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None, text_encoder_3=None,
        tokenizer_3=None)
    refused(pipe, module, r"StableDiffusion3Pipeline: the checkpoint is a transformer model \(SD3, Flux.*which no "
                          r"start module serves")


def test_an_img2img_pipeline(sd1, module):
    parts = {k: v for k, v in sd1.components.items() if k != "image_encoder"}
    pipe = diffusers.StableDiffusionImg2ImgPipeline(**parts, requires_safety_checker=False)
    refused(pipe, module, r"always starts from the input image.*inpaint pipeline at strength=1.0")


def test_latents_that_do_not_fit_the_module(sd1, module_dir, tmp_path):
    eight = release_module(tmp_path / "eight", channels=8)
    with pytest.raises(SingDiffusersError, match=r"samples 4-channel latents and the module predicts 8-channel"):
        sing_diffusers.load_module(eight, sd1)
    refused(sd1, sing_diffusers.load_module(eight), r"samples 4-channel latents and the module predicts 8-channel")
    module = sing_diffusers.load_module(module_dir, sd1)
    sd1.vae = vae(scaling_factor=0.13025)  # SDXL's VAE in an SD-1 pipeline: the same shape, another space
    refused(sd1, module, r"scales latents by 0.13025 and the module predicts SD-1.x/2.x latents.*another latent space")


@pytest.mark.parametrize("make", [
    diffusers.LCMScheduler.from_config,
    lambda config: diffusers.EDMEulerScheduler(),
    lambda config: diffusers.FlowMatchEulerDiscreteScheduler(),
    lambda config: type("MyEuler", (diffusers.EulerDiscreteScheduler,), {}).from_config(config),
], ids=["LCM", "EDM Euler", "flow matching", "a subclass"])
def test_a_scheduler_whose_first_point_cannot_be_read(make, sd1, module):
    sd1.scheduler = make(sd1.scheduler.config)
    refused(sd1, module, r"cannot tell where its sampling starts and does not guess.*from_config")


def test_a_known_scheduler_configured_for_flow_matching(sd1, module):
    sd1.scheduler = diffusers.DPMSolverMultistepScheduler.from_config(sd1.scheduler.config, use_flow_sigmas=True)
    refused(sd1, module, r"use_flow_sigmas is set")


def test_the_pipeline_text_encoder_of_an_sd2_pipeline(sd2, sd2_module):
    refused(sd2, sd2_module, r"own encode_prompt, whose embeddings are 48 wide; the module reads 32-wide ones.*"
                             r"text_encoder='module'", text_encoder="pipeline")
    refused(sd2, sd2_module, r"text_encoder must be one of module, pipeline", text_encoder="clip")


def test_a_clip_l_that_is_not_clip_l(sd2, module_dir):
    with pytest.raises(SingDiffusersError, match=r"StableDiffusionPipeline is 48 wide and the module reads 32-wide.*"
                                                 r"give SD-1.5's CLIP-L"):
        sing_diffusers.load_module(module_dir, sd2, clip_l=sd2)


def test_arguments(sd1, module):
    refused(sd1, module, r"4 generators for 2 images", generator=[seeded(i) for i in range(4)],
            num_images_per_prompt=2)
    refused(sd1, module, r"negative_prompt has 1 entries for 2 prompts", prompt=[PROMPT, PROMPT],
            negative_prompt=["x"])
    refused(sd1, module, r"either prompt or prompt_embeds", prompt_embeds=torch.zeros(1, 77, 32))
    refused(sd1, module, r"multiples of 8", height=20, width=16)
    with pytest.raises(SingDiffusersError, match="generate makes the latents itself"):
        sing_diffusers.generate(sd1, module, PROMPT, latents=torch.zeros(1, 4, 8, 8))


def test_generate_with_module_embeddings_on_an_sd2_pipeline(sd2, sd2_module):
    with pytest.raises(SingDiffusersError, match=r"prompt_embeds are the module's \(32 wide\).*latents="):
        sing_diffusers.generate(sd2, sd2_module, prompt_embeds=torch.zeros(1, 77, 32))
