"""Where the webui's sampler starts and what it is handed (sing_webui.sampler_start), read from stand-ins shaped
like the samplers' few attributes (tests/unit/webui_stand_ins.py). Which class a webui's sampler is, and that the
sampler really starts where these say, is proven by the live tier (tests/live/test_singdiffusion.py)."""

import math

import pytest
import torch
from webui_stand_ins import (
    StandInKDiffusionSampler,
    StandInOtherSampler,
    StandInProcessing,
    StandInTimestepSampler,
    stand_in_opts,
)

from sing_core.schedule import sd_alphas_cumprod, sigma_from_alpha_cumprod
from sing_webui import sampler_start
from sing_webui.sampler_start import SIGMA_SAMPLER, TIMESTEP_SAMPLER, FirstPoint

SD_ALPHAS = sd_alphas_cumprod()
KARRAS_4 = [14.6146, 4.0861, 0.9028, 0.0292, 0.0]  # 4 steps and the final 0, as get_sigmas returns them


def test_sigma_first_point():
    sigmas = [14.6, 7.0, 3.0, 1.0, 0.0]
    assert sampler_start.sigma_first_point(sigmas, 4, None, False) == FirstPoint(14.6, "sigma")
    assert sampler_start.sigma_first_point(sigmas, 4, None, True) == FirstPoint(14.6, "sgm")
    # img2img: t_enc of 4 steps at denoising 0.5 is 2, the webui starts at sigmas[4 - 2 - 1]; the SGM option
    # only scales the txt2img noise
    assert sampler_start.sigma_first_point(sigmas, 4, 2, True) == FirstPoint(7.0, "sigma")


def test_first_timestep():
    timesteps = [1, 251, 501, 751]
    assert sampler_start.first_timestep(timesteps, None, False, 1000) == 751
    assert sampler_start.first_timestep(timesteps, None, True, 1000) == 999  # UniPC: continuous time 1
    assert sampler_start.first_timestep(timesteps, 3, False, 1000) == 751
    assert sampler_start.first_timestep(timesteps, 2, True, 1000) == 501


def test_timestep_first_point_is_finite_or_infinite_but_never_nan():
    point = sampler_start.timestep_first_point(0.0046601, 999)
    assert point.sigma == pytest.approx(14.6146, abs=1e-4)
    assert (point.scaling, point.alpha_cumprod, point.timestep) == ("none", 0.0046601, 999)
    assert math.isinf(sampler_start.timestep_first_point(0.0, 999).sigma)


def never_read():
    raise AssertionError("a k-diffusion sampler's start needs no timestep schedule")


@pytest.mark.parametrize("name", ["Euler a", "DPM++ 2M Karras", "LCM", "DDPM"])  # LCM, Forge's DDPM: σ samplers
@pytest.mark.parametrize(("sgm", "scaling"), [(False, "sigma"), (True, "sgm")])
def test_a_sigma_sampler_starts_at_its_own_first_sigma(name, sgm, scaling):
    sampler = StandInKDiffusionSampler(KARRAS_4)
    p = StandInProcessing(sampler=sampler, sampler_name=name)
    point = sampler_start.first_point(SIGMA_SAMPLER, p, 4, None, stand_in_opts(sgm), never_read)
    assert point == FirstPoint(pytest.approx(14.6146), scaling)
    assert sampler.asked == [4]


def test_a_sigma_sampler_in_img2img_starts_where_the_image_is_noised():
    sampler = StandInKDiffusionSampler(KARRAS_4)
    p = StandInProcessing(sampler=sampler, sampler_name="Euler")
    # the host's setup_img2img_steps gave 4 steps, t_enc 2: the webui starts at sigmas[4 - 2 - 1]
    point = sampler_start.first_point(SIGMA_SAMPLER, p, 4, 2, stand_in_opts(True), never_read)
    assert point == FirstPoint(pytest.approx(4.0861), "sigma")  # the SGM option scales txt2img noise only


@pytest.mark.parametrize(("func_name", "t_enc", "timestep"), [
    ("ddim", None, 751),  # range(0, 1000, 1000 // 4) + 1: the last
    ("plms", None, 751),
    ("ddim_cfgpp", None, 751),
    ("unipc", None, 999),  # UniPC starts at continuous time 1 whatever the steps
    ("ddim", 2, 501),  # img2img: timesteps[t_enc]
    ("unipc", 2, 501),
])
def test_a_timestep_sampler_starts_at_its_own_first_timestep(func_name, t_enc, timestep):
    sampler = StandInTimestepSampler([1, 251, 501, 751], func_name)
    p = StandInProcessing(sampler=sampler, sampler_name=func_name)
    point = sampler_start.first_point(TIMESTEP_SAMPLER, p, 4, t_enc, stand_in_opts(True), lambda: SD_ALPHAS)
    alpha = float(SD_ALPHAS[timestep])
    assert point == FirstPoint(pytest.approx(float(sigma_from_alpha_cumprod(alpha))), "none", alpha, timestep)
    assert sampler.asked == [4]


def test_a_timestep_sampler_reads_the_schedule_the_model_runs():
    zero_terminal_snr = SD_ALPHAS.clone()
    zero_terminal_snr[-1] = 0.0  # the option rewrites the model's alphas_cumprod for the generation
    p = StandInProcessing(sampler=StandInTimestepSampler([1, 251, 501, 751], "unipc"), sampler_name="UniPC")
    point = sampler_start.first_point(TIMESTEP_SAMPLER, p, 4, None, stand_in_opts(), lambda: zero_terminal_snr)
    assert (point.timestep, point.alpha_cumprod) == (999, 0.0)
    assert math.isinf(point.sigma)


def test_a_sampler_of_neither_kind_is_refused_naming_it_and_the_fix():
    p = StandInProcessing(sampler=StandInOtherSampler(), sampler_name="Restart (extension)")
    with pytest.raises(sampler_start.UnknownSamplerError) as refused:
        sampler_start.first_point(None, p, 4, None, stand_in_opts(), never_read)
    message = str(refused.value)
    assert "sampler 'Restart (extension)' (StandInOtherSampler) is neither a k-diffusion nor a timestep" in message
    assert "Choose another sampler or disable SingDiffusion" in message


# --- what the sampler is handed: each form lands on λ·x̂0 + σ0·x1 (σ form) where the sampler starts ---

X0_HAT = torch.linspace(-1.5, 1.5, 2 * 4 * 2 * 2).reshape(2, 4, 2, 2)
X1 = torch.cos(torch.arange(2 * 4 * 2 * 2, dtype=torch.float32)).reshape(2, 4, 2, 2)
IMAGE = torch.full((2, 4, 2, 2), 0.25)  # the encoded init image (img2img's x)


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_a_sigma_sampler_scales_its_input_by_sigma0_and_lands_on_the_ddim_step(strength):
    sigma = 14.6146
    handed = sampler_start.start_value(FirstPoint(sigma, "sigma"), False, X0_HAT, X1, X1, None, strength)
    torch.testing.assert_close(handed * sigma, strength * X0_HAT + sigma * X1, atol=1e-5, rtol=1e-5)


def test_with_the_sgm_multiplier_the_input_is_scaled_by_sqrt_1_plus_sigma0_squared():
    sigma = 14.6146
    handed = sampler_start.start_value(FirstPoint(sigma, "sgm"), False, X0_HAT, X1, X1, None, 1.0)
    torch.testing.assert_close(handed * math.sqrt(1 + sigma**2), X0_HAT + sigma * X1, atol=1e-5, rtol=1e-5)


def test_a_timestep_sampler_is_handed_x_t0_itself():
    alpha = float(SD_ALPHAS[751])
    point = sampler_start.timestep_first_point(alpha, 751)
    handed = sampler_start.start_value(point, False, X0_HAT, X1, X1, None, 1.0)
    torch.testing.assert_close(handed, math.sqrt(alpha) * X0_HAT + math.sqrt(1 - alpha) * X1, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("point", [FirstPoint(4.0861, "sigma"), sampler_start.timestep_first_point(0.0682, 501)])
def test_img2img_shifts_the_noise_inside_the_mask_only(point):
    nmask = torch.zeros(2, 1, 2, 2)
    nmask[..., 0, :] = 1.0  # the top row is masked (regenerated), the bottom row kept
    noise = X1.half()
    handed = sampler_start.start_value(point, True, X0_HAT, noise, IMAGE, nmask, 1.0)
    assert handed.dtype == torch.float16  # the webui's own noise tensor's dtype
    # the sampler starts at image + σ0·noise (a timestep sampler: the same times √ᾱ0)
    start = IMAGE + point.sigma * handed.float()
    torch.testing.assert_close(start[..., 0, :], (X0_HAT + point.sigma * noise.float())[..., 0, :],
                               atol=5e-3, rtol=5e-3)
    assert torch.equal(handed[..., 1, :], noise[..., 1, :])  # the kept region's noise is untouched


def test_img2img_at_an_infinite_sigma0_hands_nothing():
    point = sampler_start.timestep_first_point(0.0, 999)
    assert sampler_start.start_value(point, True, X0_HAT, X1, IMAGE, torch.ones(2, 1, 2, 2), 1.0) is None
