"""A module of the other latent family, the SDXL refiner, SD3 and a module loaded for one pipeline passed with another
are refused with SingDiffusersError before the pipeline's UNet runs (its calls are counted)."""

from __future__ import annotations

import contextlib

import pytest
import tiny_pipes
import torch
from tiny_pipes import seeded

import sing_diffusers
from sing_diffusers import SingDiffusersError

PROMPT = "a car"


@contextlib.contextmanager
def counted_unet_calls(pipe):
    calls = []
    handle = pipe.unet.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()


def refused_by_generate(pipe, module, match: str):
    with counted_unet_calls(pipe) as calls, pytest.raises(SingDiffusersError, match=match):
        sing_diffusers.generate(pipe, module, PROMPT, num_inference_steps=2, generator=seeded(0),
                                output_type="latent")
    assert calls == []
    with pytest.raises(SingDiffusersError, match=match):
        sing_diffusers.start_latents(pipe, module, PROMPT, num_inference_steps=2)


SD_ON_SDXL = r"the module predicts SD-1.x/2.x latents and the checkpoint is SDXL .*choose an SDXL module"
SDXL_ON_SD = r"the module predicts SDXL latents and the checkpoint is SD-\d.x .*choose an SD-1.x/2.x module"


@pytest.mark.parametrize("module_fixture", ["module_dir", "oms_sd_dir"])
def test_an_sd_latent_module_on_sdxl(module_fixture, request, sdxl, sd1, sd2_built):
    """SingDiffusion's release and oms_b_openclip_15_21 (its model_index.json names StableDiffusionPipeline)."""
    path = request.getfixturevalue(module_fixture)
    text = {"text_encoder": sd2_built} if module_fixture == "oms_sd_dir" else {}
    with counted_unet_calls(sdxl) as calls, pytest.raises(SingDiffusersError, match=SD_ON_SDXL):
        sing_diffusers.load_module(path, sdxl, **text)
    assert calls == []
    loaded_for_sd1 = sing_diffusers.load_module(path, sd1, **text)
    refused_by_generate(sdxl, loaded_for_sd1, "StableDiffusionXLPipeline: " + SD_ON_SDXL)


@pytest.mark.parametrize("module_fixture", ["oms_xl_dir", "oms_mix_dir", "sing_xl_file"])
def test_an_sdxl_module_on_sd1(module_fixture, request, sdxl, sd1, sd2_built):
    path = request.getfixturevalue(module_fixture)
    text = {"text_encoder": sd2_built} if module_fixture == "oms_xl_dir" else {}
    with pytest.raises(SingDiffusersError, match=SDXL_ON_SD):
        sing_diffusers.load_module(path, sd1, **text)
    loaded_for_sdxl = sing_diffusers.load_module(path, sdxl, **text)
    refused_by_generate(sd1, loaded_for_sdxl, "StableDiffusionPipeline: " + SDXL_ON_SD)


def test_the_sdxl_refiner(tokenizer_dir, sdxl, sing_xl_file):
    refiner = tiny_pipes.sdxl_refiner(tokenizer_dir)
    match = r"StableDiffusionXLImg2ImgPipeline: the checkpoint is SDXL refiner, which no start module serves"
    with pytest.raises(SingDiffusersError, match=match):
        sing_diffusers.load_module(sing_xl_file, refiner)
    module = sing_diffusers.load_module(sing_xl_file, sdxl)
    with counted_unet_calls(refiner) as calls, pytest.raises(SingDiffusersError, match=match):
        sing_diffusers.generate(refiner, module, PROMPT, image=torch.rand(1, 3, 16, 16), strength=1.0,
                                num_inference_steps=2, output_type="latent")
    assert calls == []


def test_sdxl_img2img_with_the_base_model(tokenizer_dir, sing_xl_file):
    pipe = tiny_pipes.sdxl_pipeline(tokenizer_dir, "StableDiffusionXLImg2ImgPipeline")
    with pytest.raises(SingDiffusersError, match=r"starts from an input image.*use StableDiffusionXLPipeline"):
        sing_diffusers.load_module(sing_xl_file, pipe)


def test_clip_l_is_for_clip_l_modules(sdxl, oms_xl_dir, sd2_built):
    with pytest.raises(SingDiffusersError, match=r"clip_l= is for modules reading SD-1.5's CLIP-L; give text_encoder="):
        sing_diffusers.load_module(oms_xl_dir, sdxl, clip_l=sd2_built)
    with pytest.raises(SingDiffusersError, match=r"give text_encoder= or clip_l="):
        sing_diffusers.load_module(oms_xl_dir, sdxl, clip_l=sd2_built, text_encoder=sd2_built)


def test_a_vit_h_module_without_its_encoder_says_what_to_give(sdxl, oms_xl_dir):
    """The SDXL pipeline has no OpenCLIP ViT-H to lend: the error names the files that carry one."""
    module = sing_diffusers.load_module(oms_xl_dir, sdxl)
    with pytest.raises(SingDiffusersError, match=r"48-wide embeddings of SD-2's OpenCLIP ViT-H.*cannot lend them.*"
                                                 r"an SD-2.x checkpoint file, a diffusers SD-2.x folder"):
        sing_diffusers.start_latents(sdxl, module, PROMPT, num_inference_steps=2)


def test_an_encoder_of_the_wrong_width(sdxl, oms_xl_dir, sing_xl_file, sd1_built):
    with pytest.raises(SingDiffusersError, match=r"StableDiffusionPipeline is 32 wide and the module reads 48-wide"):
        sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd1_built)
    with pytest.raises(SingDiffusersError, match=r"SDXL's own conditioning, which has no file of its own"):
        sing_diffusers.load_module(sing_xl_file, sdxl, text_encoder="some/file.safetensors")


def test_module_arguments(sdxl, oms_xl_dir, sd2_built):
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built)
    with pytest.raises(SingDiffusersError, match=r"module_prompt has 1 entries for 2 prompts"):
        sing_diffusers.start_latents(sdxl, module, [PROMPT, PROMPT], module_prompt=["red car"])
    with pytest.raises(SingDiffusersError, match=r"prompt_embeds are the module's embeddings already"):
        sing_diffusers.start_latents(sdxl, module, prompt_embeds=torch.zeros(1, 77, 48),
                                     module_prompt="red car")
    with pytest.raises(ValueError, match=r"module_guidance_scale.*between 0"):
        sing_diffusers.start_latents(sdxl, module, PROMPT, module_guidance_scale=-1.0)
