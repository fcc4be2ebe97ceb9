"""Every listed scheduler, for real: the UNet's first input is the module's DDIM step to that scheduler's first point.

The test reads the UNet's real first input with a forward hook on pipe.unet and maps it back through the scheduler's
own add_noise and scale_model_input (not through anything of sing_diffusers'), against the module's x̂0 for the same
noise (diffusers' randn_tensor from the same seed) and text. SCHEDULERS is also the table in docs/python.md.
"""

from __future__ import annotations

import importlib.util

import diffusers
import pytest
import tiny_pipes
import torch
from diffusers.utils.torch_utils import randn_tensor
from tiny_pipes import clip_l_embeddings, first_unet_input, recovered_x0, seeded, start_defaults

import sing_diffusers
from sing_diffusers.start import plan_start

# docs row -> (scheduler class, config changes on top of the pipeline's own scheduler config)
SCHEDULERS = {
    "DDIM": ("DDIMScheduler", {}),
    "PNDM (the SD default)": ("PNDMScheduler", {}),
    "DDPM": ("DDPMScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler, trailing spacing": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "Euler, Karras sigmas": ("EulerDiscreteScheduler", {"use_karras_sigmas": True}),
    "Euler ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "KDPM2": ("KDPM2DiscreteScheduler", {}),
    "KDPM2 ancestral": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM-Solver++ multistep": ("DPMSolverMultistepScheduler", {}),
    "DPM-Solver++ multistep, Karras sigmas": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DPM-Solver++ multistep, exponential sigmas": ("DPMSolverMultistepScheduler", {"use_exponential_sigmas": True}),
    "DPM-Solver++ 2M SDE, Karras sigmas": (
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}),
    "DPM-Solver singlestep": ("DPMSolverSinglestepScheduler", {}),
    "DPM-Solver SDE": ("DPMSolverSDEScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "DDIM, trailing spacing": ("DDIMScheduler", {"timestep_spacing": "trailing"}),
    "DDIM, zero-terminal-SNR rescaling": ("DDIMScheduler", {"rescale_betas_zero_snr": True}),
}
NEEDS = {"DPMSolverSDEScheduler": "torchsde", "LMSDiscreteScheduler": "scipy"}
PROMPT, NEGATIVE, SEED, STEPS = "solid black background", "blurry", 3, 10
TOLERANCE = 1e-5


def use_scheduler(pipe, row: str) -> None:
    name, changes = SCHEDULERS[row]
    needed = NEEDS.get(name)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{name} needs {needed}, which is not installed (requirements/test.txt installs it)")
    pipe.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config, **changes)


@pytest.fixture(params=["sd1", "sd2"])
def host(request):
    """(pipeline, module): SD-1 shape with its own CLIP-L, SD-2 shape (v-prediction) with SD-1's CLIP-L lent."""
    if request.param == "sd1":
        return request.getfixturevalue("sd1"), request.getfixturevalue("module")
    return request.getfixturevalue("sd2"), request.getfixturevalue("sd2_module")


def expected_x0(module, shape, guidance_scale: float, clip_l) -> tuple[torch.Tensor, torch.Tensor]:
    x1 = randn_tensor(shape, generator=seeded(SEED))  # what the pipeline draws for this seed
    cond, uncond = clip_l_embeddings(clip_l, [PROMPT]), clip_l_embeddings(clip_l, [NEGATIVE])
    return x1, module.sing.predict_x0(x1, cond, uncond, guidance_scale)


@pytest.mark.parametrize("row", SCHEDULERS)
def test_unet_first_input_maps_back_to_the_module_x0(row, host, clip_l):
    pipe, module = host
    use_scheduler(pipe, row)
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "guidance_scale": 7.5}
    latents = sing_diffusers.start_latents(pipe, module, PROMPT, generator=seeded(SEED), **call)
    with first_unet_input(pipe) as probe:
        first = probe.run(pipe, PROMPT, latents=latents, **call)
        own = probe.run(pipe, PROMPT, generator=seeded(SEED), **call)
    x1, x0_hat = expected_x0(module, first.shape, 7.5, clip_l)
    assert x0_hat.abs().mean() > 0.05  # a prediction with weight, so that the comparison means something
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    error = (recovered_x0(first, x1, scheduler, STEPS) - x0_hat.double()).abs().max().item()
    assert error <= TOLERANCE, f"{row}: x̂0 through the UNet's first input is {error:.2e} off"
    # The pipeline's own start, mapped back the same way, is nowhere near the module's x̂0: the check discriminates.
    assert (recovered_x0(own, x1, scheduler, STEPS) - x0_hat.double()).abs().max().item() > 0.1


@pytest.mark.parametrize("row", SCHEDULERS)
def test_without_singdiffusion_the_same_seed_gives_the_pipeline_own_first_input(row, sd1, module):
    """x1 is exactly the noise the pipeline draws: handed over unchanged it reproduces the pipeline's own start."""
    use_scheduler(sd1, row)
    call = {"num_inference_steps": STEPS, "guidance_scale": 7.5}
    start = plan_start(sd1, module, PROMPT, NEGATIVE, **{**start_defaults(), **call, "generator": seeded(SEED)})
    with first_unet_input(sd1) as probe:
        own = probe.run(sd1, PROMPT, negative_prompt=NEGATIVE, generator=seeded(SEED), **call)
        handed = probe.run(sd1, PROMPT, negative_prompt=NEGATIVE, latents=start.x1, **call)
    assert torch.equal(handed, own)


def test_zero_terminal_snr_with_trailing_spacing_starts_from_pure_noise(sd2, sd2_module):
    """Rescaled to zero terminal SNR, DDIM's first point t0 = 999 has ᾱ = 0: the DDIM step gives x1 itself, so the
    module has no weight there (the rescaled, v-prediction model handles the singular start on its own)."""
    sd2.scheduler = diffusers.DDIMScheduler.from_config(sd2.scheduler.config, timestep_spacing="trailing",
                                                         rescale_betas_zero_snr=True)
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "guidance_scale": 7.5}
    first_point = sing_diffusers.read_first_point(sd2.scheduler, STEPS)
    assert (first_point.timestep, first_point.alpha_cumprod) == (999.0, 0.0)
    latents = sing_diffusers.start_latents(sd2, sd2_module, PROMPT, generator=seeded(SEED), **call)
    with first_unet_input(sd2) as probe:
        first = probe.run(sd2, PROMPT, latents=latents, **call)
        own = probe.run(sd2, PROMPT, generator=seeded(SEED), **call)
    assert torch.equal(first, own)


def test_euler_at_zero_terminal_snr_in_float64(tokenizer_dir, module_dir):
    """Euler rescaled to zero terminal SNR starts at σ0 = 4096 (diffusers sets ᾱ(999) = 2⁻²⁴): x̂0 + 4096·x1 keeps x̂0
    only to float32's 5e-4 there, so the same check runs in float64, where the step is exact."""
    clip_l = tiny_pipes.sd1_pipeline(tokenizer_dir).to(torch.float64)
    sd2 = tiny_pipes.sd2_pipeline(tokenizer_dir).to(torch.float64)
    module = sing_diffusers.load_module(module_dir, sd2, clip_l=clip_l, dtype=torch.float32)
    module.sing.double()  # sing_core loads in the dtypes hosts use; the math itself is dtype-free
    sd2.scheduler = diffusers.EulerDiscreteScheduler.from_config(sd2.scheduler.config, timestep_spacing="trailing",
                                                                 rescale_betas_zero_snr=True)
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "guidance_scale": 7.5}
    assert sing_diffusers.read_first_point(sd2.scheduler, STEPS).sigma == pytest.approx(4096.0)
    latents = sing_diffusers.start_latents(sd2, module, PROMPT, generator=seeded(SEED), **call)
    with first_unet_input(sd2) as probe:
        first = probe.run(sd2, PROMPT, latents=latents, **call)
    x1 = randn_tensor(first.shape, generator=seeded(SEED), dtype=torch.float64)
    cond, uncond = clip_l_embeddings(clip_l, [PROMPT]), clip_l_embeddings(clip_l, [NEGATIVE])
    x0_hat = module.sing.predict_x0(x1, cond, uncond, 7.5)
    scheduler = type(sd2.scheduler).from_config(sd2.scheduler.config)
    assert (recovered_x0(first, x1, scheduler, STEPS) - x0_hat).abs().max().item() <= TOLERANCE
