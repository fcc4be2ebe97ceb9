"""The other pipelines that start from nothing (ControlNet, inpaint at strength 1.0) and whole generations."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from tiny_pipes import UNET, clip_l_embeddings, first_unet_input, recovered_x0, seeded, unet

import sing_diffusers

PROMPT, NEGATIVE, STEPS = "solid black background", "grey", 6


def euler(pipe):
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def module_x0(module, clip_l, shape, seed: int, drawn_before: tuple = ()) -> tuple[torch.Tensor, torch.Tensor]:
    generator = seeded(seed)
    for earlier in drawn_before:  # what the pipeline samples from the generator before its noise
        randn_tensor(earlier, generator=generator)
    x1 = randn_tensor(shape, generator=generator)
    cond, uncond = clip_l_embeddings(clip_l, [PROMPT]), clip_l_embeddings(clip_l, [NEGATIVE])
    return x1, module.sing.predict_x0(x1, cond, uncond, 7.5).double()


def test_controlnet_pipeline(sd1, module, clip_l):
    controlnet = diffusers.ControlNetModel.from_unet(sd1.unet, conditioning_embedding_out_channels=(16, 32))
    parts = {k: v for k, v in sd1.components.items() if k != "image_encoder"}
    pipe = euler(diffusers.StableDiffusionControlNetPipeline(**parts, controlnet=controlnet,
                                                             requires_safety_checker=False))
    control = torch.rand(1, 3, 16, 16, generator=seeded(1))
    call = {"negative_prompt": NEGATIVE, "image": control, "num_inference_steps": STEPS}
    with first_unet_input(pipe) as probe:
        first = probe.run(sing_diffusers.generate, pipe, module, PROMPT, generator=seeded(2), **call)
    x1, x0_hat = module_x0(module, clip_l, first.shape, 2)
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    assert (recovered_x0(first, x1, scheduler, STEPS) - x0_hat).abs().max() <= 1e-5


@pytest.mark.parametrize("unet_channels", [4, 9], ids=["sd-unet", "inpainting-unet"])
def test_inpaint_at_strength_one_starts_the_masked_region_only(unet_channels, sd1, module, clip_l):
    """Outside the mask the latents stay the pipeline's own noise (it re-noises the kept image with them at every
    step); inside, the UNet's first input is the module's step. With an SD UNet the pipeline samples the image's
    VAE latent from the generator before its noise; x1 is still its noise."""
    parts = {k: v for k, v in sd1.components.items() if k != "image_encoder"}
    if unet_channels == 9:
        parts["unet"] = unet({**UNET, "in_channels": 9}, sd1.unet.config.cross_attention_dim, seed=9)
    pipe = euler(diffusers.StableDiffusionInpaintPipeline(**parts, requires_safety_checker=False))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[:, :8] = 255  # repaint the left half
    call = {"negative_prompt": NEGATIVE, "image": image, "mask_image": Image.fromarray(mask),
            "num_inference_steps": STEPS}
    with first_unet_input(pipe) as probe:
        first = probe.run(sing_diffusers.generate, pipe, module, PROMPT, generator=seeded(3), **call)
        own = probe.run(pipe, PROMPT, generator=seeded(3), **call)
    assert torch.equal(first[..., 4:], own[..., 4:])  # latent columns 4..7: the kept right half
    x1, x0_hat = module_x0(module, clip_l, first.shape, 3, drawn_before=[first.shape] if unet_channels == 4 else [])
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    recovered = recovered_x0(first, x1, scheduler, STEPS)
    assert (recovered[..., :4] - x0_hat[..., :4]).abs().max() <= 1e-5
    with pytest.raises(sing_diffusers.SingDiffusersError, match=r"strength=0.6 .*use strength=1.0"):
        sing_diffusers.generate(pipe, module, PROMPT, strength=0.6, **call)


def test_a_whole_generation(sd1, module):
    """generate returns the pipeline's own output; the same seed without SingDiffusion gives another image."""
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": 4, "output_type": "np"}
    with_module = sing_diffusers.generate(sd1, module, PROMPT, generator=seeded(4), **call).images
    again = sing_diffusers.generate(sd1, module, PROMPT, generator=seeded(4), **call).images
    without = sd1(PROMPT, generator=seeded(4), **call).images
    assert with_module.shape == (1, 16, 16, 3)
    assert np.isfinite(with_module).all()
    assert np.array_equal(with_module, again)  # seeded: the same call gives the same image
    assert np.abs(with_module - without).max() > 1e-3


def test_later_draws_from_the_generator_are_those_of_the_run_without_singdiffusion(sd1, module):
    """Euler ancestral draws noise at every step from the same generator: at module_strength=0 (with trailing spacing
    exactly the pipeline's own start) the whole generation is the pipeline's own image, bit for bit."""
    sd1.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(sd1.scheduler.config,
                                                                         timestep_spacing="trailing")
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": 4, "output_type": "np"}
    ours = sing_diffusers.generate(sd1, module, PROMPT, generator=seeded(6), module_strength=0.0, **call).images
    own = sd1(PROMPT, generator=seeded(6), **call).images
    assert np.array_equal(ours, own)
