"""PNDM and DDIM at the reference's settings: our start is the reference pipeline's start for the same x1.

The reference (PangzeCheung/SingDiffusion, SingDiffusionPipeline) builds the module as diffusers'
UNet2DConditionModel from config.json with the time conditioning removed from every ResnetBlock2D, reads prompts with
SD-1.5's CLIP tokenizer and text encoder (negative prompt ""), applies normalized guidance and returns
scheduler.add_noise(x̂0, x1, timesteps[0]) after set_timesteps(50); its x1 is unseeded, so here it is given ours.
"""

from __future__ import annotations

import diffusers
import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.utils.torch_utils import randn_tensor
from tiny_pipes import SD15_SCHEDULER, clip_l_embeddings, seeded, start_defaults

import sing_diffusers
from sing_diffusers.start import plan_start

REFERENCE_STEPS, REFERENCE_GUIDANCE = 50, 7.5  # the reference scripts' settings
PROMPTS = ("solid black background", "Monochrome line-art logo on a white background")


def reference_module(folder):
    model = diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(folder))
    for block in model.modules():
        if isinstance(block, ResnetBlock2D):
            block.time_emb_proj, block.time_embedding_norm = None, None
    state = torch.load(folder / "diffusion_pytorch_model.bin", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=False)  # the removed projections' weights have nowhere to go
    return model.eval()


def reference_start(pipe, model, clip_l, prompt: str, x1: torch.Tensor) -> torch.Tensor:
    pipe.scheduler.set_timesteps(REFERENCE_STEPS)
    t0 = (torch.ones((1,)) * pipe.scheduler.timesteps[0]).long()
    cond, uncond = clip_l_embeddings(clip_l, [prompt]), clip_l_embeddings(clip_l, [""])
    placeholder_time = torch.ones((x1.shape[0],), dtype=torch.long)
    with torch.no_grad():
        x0_cond = model(x1, placeholder_time, cond).sample
        x0_uncond = model(x1, placeholder_time, uncond).sample
    x0_hat = (x0_uncond + (x0_cond - x0_uncond) * REFERENCE_GUIDANCE) / REFERENCE_GUIDANCE
    return pipe.scheduler.add_noise(x0_hat, x1, t0)


@pytest.mark.parametrize("scheduler", ["PNDMScheduler", "DDIMScheduler"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_our_start_is_the_reference_start(scheduler, prompt, sd1, module, module_dir, clip_l):
    sd1.scheduler = getattr(diffusers, scheduler).from_config(SD15_SCHEDULER)
    ours = sing_diffusers.start_latents(sd1, module, prompt, num_inference_steps=REFERENCE_STEPS,
                                        guidance_scale=REFERENCE_GUIDANCE, generator=seeded(11))
    x1 = randn_tensor(ours.shape, generator=seeded(11))
    theirs = reference_start(sd1, reference_module(module_dir), clip_l, prompt, x1)
    assert int(sd1.scheduler.timesteps[0]) == 981
    # The two UNet implementations agree to float32 rounding (the parity tier checks them on their own).
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    assert (ours - x1).abs().max() > 0.05  # the module's step moved the start


@pytest.mark.parametrize("scheduler", ["PNDMScheduler", "DDIMScheduler"])
def test_the_step_is_the_reference_construction_rounded_once(scheduler, sd1, module):
    """For the same x̂0 and x1 the start is scheduler.add_noise(x̂0, x1, timesteps[0]) exactly, evaluated in float64
    and rounded once to the pipeline's dtype (sing_core's ddim_start); diffusers' float32 add_noise rounds three
    times and differs from it only by that rounding (a few units in the last place of its two terms)."""
    sd1.scheduler = getattr(diffusers, scheduler).from_config(SD15_SCHEDULER)
    call = {**start_defaults(), "num_inference_steps": REFERENCE_STEPS, "guidance_scale": REFERENCE_GUIDANCE}
    start = plan_start(sd1, module, PROMPTS[0], None, **{**call, "generator": seeded(12)})
    clip = sing_diffusers.text.pipeline_text(sd1)
    x0_hat = module.sing.predict_x0(start.x1, clip.encode([PROMPTS[0]]), clip.encode([""]), REFERENCE_GUIDANCE)
    sd1.scheduler.set_timesteps(REFERENCE_STEPS)
    t0 = sd1.scheduler.timesteps[:1]
    in_float64 = sd1.scheduler.add_noise(x0_hat.double(), start.x1.double(), t0).float()
    assert torch.equal(start.latents, in_float64)
    in_float32 = sd1.scheduler.add_noise(x0_hat, start.x1, t0)
    terms = sd1.scheduler.add_noise(x0_hat.abs(), start.x1.abs(), t0)  # |√ᾱ·x̂0| + |√(1 − ᾱ)·x1|
    assert ((start.latents - in_float32).abs() <= 2 * torch.finfo(torch.float32).eps * terms).all()
    assert not torch.equal(start.latents, in_float32)  # the roundings do differ somewhere: the check is not empty
