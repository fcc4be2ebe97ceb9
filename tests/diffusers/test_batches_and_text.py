"""Batches, generator lists, the text sources, ready embeddings, guidance ≤ 1 and module_strength, through the real
pipelines' first UNet input where it matters."""

from __future__ import annotations

import diffusers
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor
from tiny_pipes import clip_l_embeddings, first_unet_input, recovered_x0, seeded, start_defaults

import sing_core
import sing_diffusers
from sing_core.args import ArgsError
from sing_diffusers.start import plan_start

PROMPTS = ["solid black background", "solid white background"]
NEGATIVES = ["grey", "blurry"]
STEPS = 8


def euler(pipe, **changes):
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, **changes)
    return pipe


def test_prompts_times_images_per_prompt_with_a_generator_per_image(sd1, module, clip_l):
    euler(sd1)
    generators = [seeded(20 + i) for i in range(4)]
    call = {"negative_prompt": NEGATIVES, "num_images_per_prompt": 2, "num_inference_steps": STEPS}
    with first_unet_input(sd1) as probe:
        first = probe.run(sing_diffusers.generate, sd1, module, PROMPTS, generator=generators, **call)
    assert first.shape[0] == 4
    x1 = randn_tensor(first.shape, generator=[seeded(20 + i) for i in range(4)])
    order = [0, 0, 1, 1]  # the pipelines' order: every image of the first prompt, then of the second
    cond = clip_l_embeddings(clip_l, [PROMPTS[i] for i in order])
    uncond = clip_l_embeddings(clip_l, [NEGATIVES[i] for i in order])
    x0_hat = module.sing.predict_x0(x1, cond, uncond, 7.5)
    recovered = recovered_x0(first, x1, type(sd1.scheduler).from_config(sd1.scheduler.config), STEPS)
    assert (recovered - x0_hat.double()).abs().max() <= 1e-5
    # Image 3 of the batch is image 1 of a run of its own prompt with its own seed: a seed means one image.
    alone = sing_diffusers.start_latents(sd1, module, PROMPTS[1], NEGATIVES[1], generator=seeded(23),
                                         num_inference_steps=STEPS)
    batch = sing_diffusers.start_latents(sd1, module, PROMPTS, generator=[seeded(20 + i) for i in range(4)], **call)
    torch.testing.assert_close(batch[3:], alone, rtol=0, atol=1e-6)


def test_one_generator_for_a_batch_draws_what_the_pipeline_draws(sd1, module):
    euler(sd1)
    call = {"num_images_per_prompt": 3, "num_inference_steps": STEPS}
    start = plan_start(sd1, module, PROMPTS, None, **{**start_defaults(), **call, "generator": seeded(5)})
    with first_unet_input(sd1) as probe:
        own = probe.run(sd1, PROMPTS, generator=seeded(5), **call)
        handed = probe.run(sd1, PROMPTS, latents=start.x1, **call)
    assert start.x1.shape[0] == 6
    assert torch.equal(handed, own)


def test_guidance_at_most_one_uses_the_prompt_alone(sd1, module, clip_l):
    call = {"guidance_scale": 1.0, "num_inference_steps": STEPS, "generator": seeded(7)}
    with_negative = sing_diffusers.start_latents(sd1, module, PROMPTS[0], "anything at all", **call)
    call["generator"] = seeded(7)
    without = sing_diffusers.start_latents(sd1, module, PROMPTS[0], **call)
    assert torch.equal(with_negative, without)
    x1 = randn_tensor(without.shape, generator=seeded(7))
    x0_cond = module.sing.predict_x0(x1, clip_l_embeddings(clip_l, PROMPTS[:1]))
    assert torch.equal(without, sing_core.ddim_start(x0_cond, x1, first_alpha_cumprod(sd1.scheduler)))


def test_ready_embeddings_skip_both_text_encoders(sd2, sd2_module, clip_l):
    """On an SD-2 pipeline with no CLIP-L anywhere: module embeddings given ready need none."""
    bare = sing_diffusers.LoadedModule(sd2_module.sing)  # no clip_l: text would be refused on SD-2
    cond, uncond = clip_l_embeddings(clip_l, PROMPTS), clip_l_embeddings(clip_l, NEGATIVES)
    ready = sing_diffusers.start_latents(sd2, bare, prompt_embeds=cond, negative_prompt_embeds=uncond,
                                         generator=seeded(8), num_inference_steps=STEPS)
    from_text = sing_diffusers.start_latents(sd2, sd2_module, PROMPTS, NEGATIVES, generator=seeded(8),
                                             num_inference_steps=STEPS)
    assert torch.equal(ready, from_text)
    with pytest.raises(sing_diffusers.SingDiffusersError, match="clip_l="):
        sing_diffusers.start_latents(sd2, bare, PROMPTS, generator=seeded(8), num_inference_steps=STEPS)


def test_pipeline_text_encoder_is_the_pipeline_own_encode_prompt(sd1, module):
    call = {"num_inference_steps": STEPS}
    as_pipeline = sing_diffusers.start_latents(sd1, module, PROMPTS, NEGATIVES, text_encoder="pipeline",
                                               generator=seeded(9), **call)
    cond, uncond = sd1.encode_prompt(PROMPTS, "cpu", 1, True, NEGATIVES)
    x1 = randn_tensor(as_pipeline.shape, generator=seeded(9))
    x0_hat = module.sing.predict_x0(x1, cond, uncond, 7.5)
    assert torch.equal(as_pipeline, sing_core.ddim_start(x0_hat, x1, first_alpha_cumprod(sd1.scheduler)))
    # On SD-1 the module's CLIP-L is this very encoder, read as the reference reads it: the same start.
    as_module = sing_diffusers.start_latents(sd1, module, PROMPTS, NEGATIVES, generator=seeded(9), **call)
    assert torch.equal(as_module, as_pipeline)


def first_alpha_cumprod(scheduler) -> float:
    scheduler = type(scheduler).from_config(scheduler.config)
    scheduler.set_timesteps(STEPS)
    return float(scheduler.alphas_cumprod[scheduler.timesteps[0]])


@pytest.mark.parametrize("layout", ["pipeline folder", "text_encoder folder", "bundled in the module file"])
def test_clip_l_from_files_equals_clip_l_from_an_sd1_pipeline(layout, sd2, sd2_module, clip_l, tmp_path):
    if layout == "bundled in the module file":
        path = sing_core.save_module(sd2_module.sing, None, tmp_path / "bundled.safetensors",
                                     text_encoder_state=clip_l.text_encoder.state_dict(),
                                     text_encoder_config=clip_l.text_encoder.config.to_dict())
        loaded = sing_diffusers.load_module(path, sd2)
    else:
        clip_l.save_pretrained(tmp_path / "sd1")
        source = tmp_path / "sd1" if layout == "pipeline folder" else tmp_path / "sd1" / "text_encoder"
        loaded = sing_diffusers.load_module(sd2_module.sing.path, sd2, clip_l=source)
    call = {"num_inference_steps": STEPS, "negative_prompt": NEGATIVES}
    from_file = sing_diffusers.start_latents(sd2, loaded, PROMPTS, generator=seeded(10), **call)
    lent = sing_diffusers.start_latents(sd2, sd2_module, PROMPTS, generator=seeded(10), **call)
    torch.testing.assert_close(from_file, lent, rtol=0, atol=1e-5)  # sing_core's CLIP against transformers'


def test_module_strength(sd1, module, clip_l):
    """λ scales x̂0 (sing_core's strength): 0 is the step from x̂0 = 0, which for a σ scheduler that scales unit
    noise by σ0 is the pipeline's own start bit for bit; 2 doubles x̂0; the schema's range is enforced."""
    euler(sd1, timestep_spacing="trailing")
    call = {"num_inference_steps": STEPS, "negative_prompt": NEGATIVES[0]}
    with first_unet_input(sd1) as probe:
        own = probe.run(sd1, PROMPTS[0], generator=seeded(13), **call)
        none = probe.run(sing_diffusers.generate, sd1, module, PROMPTS[0], generator=seeded(13), module_strength=0.0,
                         **call)
        double = probe.run(sing_diffusers.generate, sd1, module, PROMPTS[0], generator=seeded(13),
                           module_strength=2.0, **call)
    assert torch.equal(none, own)
    x1 = randn_tensor(own.shape, generator=seeded(13))
    x0_hat = module.sing.predict_x0(x1, clip_l_embeddings(clip_l, PROMPTS[:1]),
                                    clip_l_embeddings(clip_l, NEGATIVES[:1]), 7.5)
    scheduler = type(sd1.scheduler).from_config(sd1.scheduler.config)
    assert (recovered_x0(double, x1, scheduler, STEPS) - 2 * x0_hat.double()).abs().max() <= 2e-5
    with pytest.raises(ArgsError, match="module_strength"):
        sing_diffusers.start_latents(sd1, module, PROMPTS[0], module_strength=2.5)


def test_module_strength_zero_on_a_vp_scheduler_is_the_step_from_zero(sd1, module):
    """DDIM's sample at t0 = 981 is x1 itself without SingDiffusion; the DDIM step from x̂0 = 0 is √(1 − ᾱ)·x1."""
    latents = sing_diffusers.start_latents(sd1, module, PROMPTS[0], generator=seeded(14), module_strength=0.0,
                                           num_inference_steps=50)
    x1 = randn_tensor(latents.shape, generator=seeded(14))
    assert torch.equal(latents, sing_core.ddim_start(torch.zeros_like(x1), x1, sd1.scheduler.alphas_cumprod[981]))


def test_generate_with_ready_embeddings_on_sd1_gives_them_to_the_pipeline_too(sd1, module, clip_l):
    euler(sd1)
    cond, uncond = clip_l_embeddings(clip_l, PROMPTS), clip_l_embeddings(clip_l, NEGATIVES)
    call = {"prompt_embeds": cond, "negative_prompt_embeds": uncond, "num_inference_steps": STEPS}
    with first_unet_input(sd1) as probe:
        first = probe.run(sing_diffusers.generate, sd1, module, generator=seeded(15), **call)
        handed_text = probe.run(sing_diffusers.generate, sd1, module, PROMPTS, NEGATIVES, generator=seeded(15),
                                num_inference_steps=STEPS)
    assert torch.equal(first, handed_text)
    x1 = randn_tensor(first.shape, generator=seeded(15))
    x0_hat = module.sing.predict_x0(x1, cond, uncond, 7.5).double()
    scheduler = type(sd1.scheduler).from_config(sd1.scheduler.config)
    assert (recovered_x0(first, x1, scheduler, STEPS) - x0_hat).abs().max() <= 1e-5
