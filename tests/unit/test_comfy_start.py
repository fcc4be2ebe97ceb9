"""SingStart, the SAMPLER_SAMPLE wrapper, on STAND-INS shaped like ComfyUI's guider and sampler."""

import pytest
import torch
from comfy_stand_ins import StandInExecutor, StandInGuider, StandInPatcher, cond
from unet_helpers import tiny_module

from sing_comfy import applies
from sing_comfy.conds import CondsError
from sing_comfy.start import SingStart
from sing_core.start import sigma_start

WIDTH = 24  # unet_helpers.TINY's text width


@pytest.fixture(scope="module")
def module():
    return tiny_module()


def sample(start, guider, sigmas, noise, latent=None, mask=None):
    executor = StandInExecutor()
    latent = torch.zeros_like(noise) if latent is None else latent
    out = start(executor, guider, sigmas, {}, None, noise, latent, mask, True)
    (args, _), = executor.calls
    assert args[0] is guider  # everything but the noise is passed on as it came
    assert args[5] is latent
    return out


def first_point(guider, sigmas, noise_in, max_denoise):
    """What ComfyUI's KSAMPLER makes of the noise it is handed."""
    return guider.inner_model.model_sampling.noise_scaling(sigmas[:1], noise_in, torch.zeros_like(noise_in),
                                                           max_denoise)


def test_each_image_starts_at_its_own_x0_plus_sigma0_x1(module):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(2, 4, 16, 16, generator=g)
    pos, neg = torch.randn(1, 77, WIDTH, generator=g), torch.randn(1, 77, WIDTH, generator=g)
    guider = StandInGuider({"positive": [cond(pos)], "negative": [cond(neg)]}, cfg=5.0)
    sigmas = torch.tensor([14.6146, 3.0, 0.0])
    noise_in = sample(SingStart(StandInPatcher(module), 0.0), guider, sigmas, x1)
    expected = sigma_start(module.predict_x0(x1, pos, neg, 5.0), x1, 14.6146)
    torch.testing.assert_close(first_point(guider, sigmas, noise_in, True), expected, atol=1e-5, rtol=1e-5)
    # a batch of one with the same noise row gives the same start: x̂0 is per image
    single = sample(SingStart(StandInPatcher(module), 0.0), guider, sigmas, x1[1:])
    torch.testing.assert_close(single, noise_in[1:], atol=1e-6, rtol=1e-6)


def test_strength_scales_x0_hat(module):
    x1, pos = torch.randn(1, 4, 8, 8), torch.randn(1, 77, WIDTH)
    guider = StandInGuider({"positive": [cond(pos)]}, cfg=1.0)
    sigmas = torch.tensor([14.6146, 0.0])
    noise_in = sample(SingStart(StandInPatcher(module), 0.0, strength=0.5), guider, sigmas, x1)
    expected = sigma_start(module.predict_x0(x1, pos), x1, 14.6146, strength=0.5)
    torch.testing.assert_close(first_point(guider, sigmas, noise_in, True), expected, atol=1e-5, rtol=1e-5)


def test_below_sigma_max_the_scaling_is_sigma0(module):
    schedule = StandInGuider({}).inner_model.model_sampling.sigmas.tolist()
    sigmas = torch.tensor(applies.ddim_uniform_schedule(schedule, 4))  # ddim_uniform: 751, below σmax
    x1 = torch.randn(1, 4, 8, 8)
    pos = torch.randn(1, 77, WIDTH)
    guider = StandInGuider({"positive": [cond(pos)], "negative": [cond(pos)]}, cfg=1.0)
    noise_in = sample(SingStart(StandInPatcher(module), 0.0), guider, sigmas, x1)
    expected = sigma_start(module.predict_x0(x1, pos), x1, float(sigmas[0]))
    torch.testing.assert_close(first_point(guider, sigmas, noise_in, False), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("where", ["latent", "mask", "sigma", "no_noise"])
def test_the_noise_passes_untouched_where_it_does_not_apply(module, where):
    x1 = torch.randn(1, 4, 8, 8)
    guider = StandInGuider({"positive": [cond(torch.randn(1, 77, WIDTH))]})
    sigmas = torch.tensor([6.0 if where == "sigma" else 14.6146, 0.0])
    latent = torch.ones_like(x1) if where == "latent" else None
    mask = torch.ones(1, 1, 8, 8) if where == "mask" else None
    noise = torch.zeros_like(x1) if where == "no_noise" else x1
    start = SingStart(StandInPatcher(module), 0.0)
    assert sample(start, guider, sigmas, noise, latent, mask) is noise
    assert sample(start, guider, sigmas, noise, latent, mask) is noise
    assert len(start.said) == 1  # said once


def test_conditioning_of_another_width_is_an_error_not_a_silent_skip(module):
    guider = StandInGuider({"positive": [cond(torch.randn(1, 77, 1024))]})
    with pytest.raises(CondsError, match=r"1024 wide.*24-wide text"):
        sample(SingStart(StandInPatcher(module), 0.0), guider, torch.tensor([14.6146, 0.0]), torch.randn(1, 4, 8, 8))


def test_a_flow_model_at_sampling_time_is_an_error(module):
    from comfy_stand_ins import StandInFlowSampling, StandInInnerModel

    guider = StandInGuider({"positive": [cond(torch.randn(1, 77, WIDTH))]},
                           inner_model=StandInInnerModel(StandInFlowSampling()))
    with pytest.raises(ValueError, match="eps or v prediction"):
        sample(SingStart(StandInPatcher(module), 0.0), guider, torch.tensor([1.0, 0.0]), torch.randn(1, 4, 8, 8))
