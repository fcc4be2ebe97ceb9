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


ZERO_SNR = {
    "DDIM, rescaled": ("DDIMScheduler", {"rescale_betas_zero_snr": True}),
    "DDIM, rescaled, trailing": ("DDIMScheduler", {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}),
    "Euler, rescaled, trailing": ("EulerDiscreteScheduler",
                                  {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}),
}


@pytest.mark.parametrize("row", ZERO_SNR)
def test_a_scheduler_at_zero_terminal_snr_does_not_run_the_module(row, sd2, sd2_module, caplog):
    """A schedule rescaled to zero terminal SNR belongs to a model trained to start from pure noise: its own start
    x1 is where the module's step lands at SNR 0 (ᾱ(999) = 0), so the module does not run, and the log says why. The
    UNet's first input is the pipeline's own, bit for bit."""
    name, changes = ZERO_SNR[row]
    sd2.scheduler = getattr(diffusers, name).from_config(sd2.scheduler.config, **changes)
    assert sing_diffusers.read_first_point(sd2.scheduler, STEPS).zero_terminal_snr
    calls = []
    handle = sd2_module.sing.register_forward_pre_hook(lambda *_: calls.append(1))
    call = {"negative_prompt": NEGATIVE, "num_inference_steps": STEPS, "guidance_scale": 7.5}
    try:
        with caplog.at_level("WARNING", logger="sing_diffusers"), pytest.warns(
                sing_diffusers.ZeroTerminalSnrWarning, match=r"module does not run: the start is the pipeline's own"):
            latents = sing_diffusers.start_latents(sd2, sd2_module, PROMPT, generator=seeded(SEED), **call)
    finally:
        handle.remove()
    assert calls == []
    assert "starts at zero terminal SNR (rescale_betas_zero_snr=True" in caplog.text
    assert "the module does not run" in caplog.text
    with first_unet_input(sd2) as probe:
        first = probe.run(sd2, PROMPT, latents=latents, **call)
        own = probe.run(sd2, PROMPT, generator=seeded(SEED), **call)
    assert torch.equal(first, own)


def test_a_start_at_alpha_cumprod_zero_is_zero_terminal_snr_without_the_flag():
    """ᾱ(t0) ≈ 0 alone (custom sigmas reaching 10⁴) is a start at SNR 0 too; SD's own first points are not."""
    config = {**tiny_pipes.SD15_SCHEDULER, "timestep_spacing": "trailing"}
    euler = diffusers.EulerDiscreteScheduler.from_config(config)
    assert not sing_diffusers.read_first_point(euler, STEPS).zero_terminal_snr
    huge = sing_diffusers.read_first_point(euler, None, sigmas=[1e4, 10.0, 1.0, 0.1])
    assert huge.alpha_cumprod < 1e-6
    assert huge.zero_terminal_snr
    assert "ᾱ(t0) = 1e-08" in huge.zero_terminal_snr_reason
