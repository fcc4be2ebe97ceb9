"""SDXL pipelines with One More Step's and SingDiffusion's SDXL modules, through the real pipeline's first UNet input.

As in test_scheduler_starts, the UNet's first input is read with a forward hook and mapped back through the
scheduler's own add_noise and scale_model_input; the module's x̂0 is computed from sing_core's module on the same
noise (diffusers' randn_tensor from the same seed) and on embeddings made here with transformers' models directly.
"""

from __future__ import annotations

import diffusers
import pytest
import tiny_pipes
import torch
from diffusers.utils.torch_utils import randn_tensor
from test_scheduler_starts import SCHEDULERS, use_scheduler
from tiny_pipes import clip_l_embeddings, first_unet_input, recovered_x0, seeded

import sing_diffusers
from sing_diffusers.start import plan_start, start_at

PROMPT, NEGATIVE, SEED, STEPS = "solid black background", "blurry", 4, 6
TOLERANCE = 1e-4


def sdxl_embeddings(pipe, prompts: list[str]) -> torch.Tensor:
    """SDXL's own 2048-wide (here 64) conditioning: CLIP-L penultimate ⊕ bigG penultimate, as encode_prompt makes it."""
    with torch.no_grad():
        return pipe.encode_prompt(prompt=prompts, device="cpu", num_images_per_prompt=1,
                                  do_classifier_free_guidance=False)[0]


@pytest.fixture(params=["oms_b_openclip_xl", "singdiffusion_xl"])
def case(request, sdxl, sd2_built):
    """(module, its cond, its uncond, its w) for the call below: OMS reads SD-2's ViT-H and guides against "" with
    plain CFG (w = 2 given); SingDiffusion reads SDXL's own text and follows guidance_scale, normalized."""
    if request.param == "oms_b_openclip_xl":
        module = sing_diffusers.load_module(request.getfixturevalue("oms_xl_dir"), sdxl, text_encoder=sd2_built)
        cond, uncond = clip_l_embeddings(sd2_built, [PROMPT]), clip_l_embeddings(sd2_built, [""])
        return module, cond, uncond, 2.0, {"module_guidance_scale": 2.0}
    module = sing_diffusers.load_module(request.getfixturevalue("sing_xl_file"), sdxl)
    return module, sdxl_embeddings(sdxl, [PROMPT]), sdxl_embeddings(sdxl, [NEGATIVE]), 7.5, {}


@pytest.mark.parametrize("row", SCHEDULERS)
def test_every_scheduler_starts_at_the_module_step_on_sdxl(row, sdxl, case):
    module, cond, uncond, w, module_args = case
    use_scheduler(sdxl, row)
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "guidance_scale": 7.5}
    with first_unet_input(sdxl) as probe:
        first = probe.run(sing_diffusers.generate, sdxl, module, PROMPT, generator=seeded(SEED), **call,
                          **module_args)
        own = probe.run(sdxl, PROMPT, generator=seeded(SEED), **call)
    x1 = randn_tensor(first.shape, generator=seeded(SEED))
    x0_hat = module.sing.predict_x0(x1, cond, uncond, w).double()
    assert x0_hat.abs().mean() > 0.05
    scheduler = type(sdxl.scheduler).from_config(sdxl.scheduler.config)
    error = (recovered_x0(first, x1, scheduler, STEPS) - x0_hat).abs().max().item()
    assert error <= TOLERANCE, f"{row}: x̂0 through the UNet's first input is {error:.2e} off"
    assert (recovered_x0(own, x1, scheduler, STEPS) - x0_hat).abs().max().item() > 0.1


def oms_start(pipe, module, **kwargs):
    call = {"num_inference_steps": STEPS, "generator": seeded(SEED), "text_encoder": "module", "timesteps": None,
            "sigmas": None, "clip_skip": None, "height": None, "width": None, "num_images_per_prompt": 1,
            "prompt_embeds": None, "negative_prompt_embeds": None, "guidance_scale": 7.5, "module_strength": 1.0}
    negative = kwargs.pop("negative_prompt", None)
    return plan_start(pipe, module, kwargs.pop("prompt", PROMPT), negative, **{**call, **kwargs})


def test_oms_plain_cfg_against_its_own_empty_prompt(sdxl, oms_xl_dir, sd2_built):
    """x̂0 = −v; w = 1 (the default, also for 0 and None) is the prompt alone, whatever guidance_scale; w = 2 is
    −(v_u + 2·(v_c − v_u)) with u the module's "" whatever the negative prompt; w = 0.5 moves toward "" (plain CFG
    for every w > 0, as in the reference)."""
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built)
    first = sing_diffusers.read_first_point(sdxl.scheduler, STEPS)
    cond, empty = clip_l_embeddings(sd2_built, [PROMPT]), clip_l_embeddings(sd2_built, [""])
    x1 = randn_tensor((1, 4, 8, 8), generator=seeded(SEED))
    with torch.no_grad():
        v_c, v_u = module.sing.unet(x1, cond), module.sing.unet(x1, empty)  # the network's raw v
    for w, args in [(1.0, {}), (1.0, {"module_guidance_scale": 0}), (1.0, {"guidance_scale": 3.0}),
                    (2.0, {"module_guidance_scale": 2}), (2.0, {"module_guidance_scale": 2, "negative_prompt": "x"}),
                    (0.5, {"module_guidance_scale": 0.5})]:
        start = oms_start(sdxl, module, **args)
        expected = start_at(first, -(v_u + w * (v_c - v_u)), x1)
        torch.testing.assert_close(start.latents, expected, rtol=0, atol=1e-5, msg=f"w={w} {args}")
    one, two = oms_start(sdxl, module).latents, oms_start(sdxl, module, module_guidance_scale=2).latents
    assert (one - two).abs().max() > 0.05  # w changes the start: the comparisons above discriminate


def test_the_module_prompt_changes_only_the_module_side(sdxl, oms_xl_dir, sd2_built):
    """module_prompt is what the module reads; the pipeline still conditions its UNet on the prompt."""
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built)
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "generator": seeded(SEED)}
    with first_unet_input(sdxl) as probe:
        plain = probe.run(sing_diffusers.generate, sdxl, module, "a car", **call)
        plain_text = probe.text
        call["generator"] = seeded(SEED)
        steered = probe.run(sing_diffusers.generate, sdxl, module, "a car", module_prompt="red car", **call)
        steered_text = probe.text
    assert torch.equal(steered_text, plain_text)  # the UNet's conditioning: the prompt's, unchanged
    assert (steered - plain).abs().max() > 0.05
    x1 = randn_tensor(plain.shape, generator=seeded(SEED))
    scheduler = type(sdxl.scheduler).from_config(sdxl.scheduler.config)
    for first, text in ((plain, "a car"), (steered, "red car")):
        x0_hat = module.sing.predict_x0(x1, clip_l_embeddings(sd2_built, [text])).double()
        assert (recovered_x0(first, x1, scheduler, STEPS) - x0_hat).abs().max() <= TOLERANCE


def test_oms_mixclip_reads_sdxl_own_text_and_its_empty_prompt_is_encoded(sdxl, oms_mix_dir):
    """oms_l_mixclip_xl reads SDXL's own conditioning; its "" is "" encoded by those encoders, not the zeros that
    SDXL's force_zeros_for_empty_prompt gives the pipeline's own negative side."""
    assert sdxl.config.force_zeros_for_empty_prompt
    module = sing_diffusers.load_module(oms_mix_dir, sdxl)
    assert module.kind.text == "sdxl"
    start = oms_start(sdxl, module, module_guidance_scale=2.0)
    cond, empty = sdxl_embeddings(sdxl, [PROMPT]), sdxl_embeddings(sdxl, [""])
    assert empty.abs().mean() > 0.1
    x0_hat = module.sing.predict_x0(start.x1, cond, empty, 2.0)
    first = sing_diffusers.read_first_point(sdxl.scheduler, STEPS)
    torch.testing.assert_close(start.latents, start_at(first, x0_hat, start.x1), rtol=0, atol=1e-5)


def test_the_module_runs_in_the_unet_dtype(tokenizer_dir, oms_xl_dir, sd2_built):
    """Loaded for a float32 pipeline and used with a bfloat16 one, the module follows the UNet's dtype."""
    sdxl = tiny_pipes.sdxl_pipeline(tokenizer_dir)  # its own models: they change dtype
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built)
    assert module.sing.dtype == torch.float32
    sdxl.to(torch.bfloat16)
    assert sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built).sing.dtype == torch.bfloat16
    start = oms_start(sdxl, module)
    assert module.sing.dtype == torch.bfloat16
    assert start.latents.dtype == torch.bfloat16  # the pipeline's own noise dtype (its text encoders')


def test_the_controlnet_xl_pipeline(sdxl, sing_xl_file):
    """StableDiffusionXLControlNetPipeline draws and scales its latents as StableDiffusionXLPipeline does."""
    controlnet = diffusers.ControlNetModel.from_unet(sdxl.unet, conditioning_embedding_out_channels=(16, 32))
    parts = {k: v for k, v in sdxl.components.items() if k not in ("image_encoder", "feature_extractor")}
    pipe = diffusers.StableDiffusionXLControlNetPipeline(**parts, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    module = sing_diffusers.load_module(sing_xl_file, pipe)
    control = torch.rand(1, 3, 64, 64, generator=seeded(1))
    call = {"negative_prompt": NEGATIVE, "image": control, "num_inference_steps": STEPS}
    with first_unet_input(pipe) as probe:
        first = probe.run(sing_diffusers.generate, pipe, module, PROMPT, generator=seeded(SEED), **call)
    x1 = randn_tensor(first.shape, generator=seeded(SEED))
    x0_hat = module.sing.predict_x0(x1, sdxl_embeddings(sdxl, [PROMPT]), sdxl_embeddings(sdxl, [NEGATIVE]), 5.0)
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    assert (recovered_x0(first, x1, scheduler, STEPS) - x0_hat.double()).abs().max() <= TOLERANCE


def test_a_batch_of_three_prompts_with_a_generator_each(sdxl, oms_xl_dir, sd2_built):
    """Each image of the batch starts at the module's step for its own prompt and its own seed; the module's "" is
    one row shared by all."""
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built)
    prompts = ["a car", "a red car at night", "solid white background"]
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "module_guidance_scale": 2.0}
    with first_unet_input(sdxl) as probe:
        first = probe.run(sing_diffusers.generate, sdxl, module, prompts,
                          generator=[seeded(30 + i) for i in range(3)], **call)
    x1 = randn_tensor(first.shape, generator=[seeded(30 + i) for i in range(3)])
    empty = clip_l_embeddings(sd2_built, [""]).expand(3, -1, -1)
    x0_hat = module.sing.predict_x0(x1, clip_l_embeddings(sd2_built, prompts), empty, 2.0).double()
    scheduler = type(sdxl.scheduler).from_config(sdxl.scheduler.config)
    assert (recovered_x0(first, x1, scheduler, STEPS) - x0_hat).abs().max() <= TOLERANCE
    alone = sing_diffusers.start_latents(sdxl, module, prompts[2], generator=seeded(32), **call)
    batch = sing_diffusers.start_latents(sdxl, module, prompts, generator=[seeded(30 + i) for i in range(3)], **call)
    torch.testing.assert_close(batch[2:], alone, rtol=0, atol=1e-5)
