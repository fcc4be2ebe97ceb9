"""The demo's samplers: A1111's grids, their first points with and without the module, and that they sample right."""

import math

import pytest
import torch

from sing_core.demo.data import make_mixture
from sing_core.demo.denoiser import MixtureDenoiser
from sing_core.demo.experiment import start_point
from sing_core.demo.samplers import (
    ddim_timesteps,
    denoised_from_eps,
    discrete_sigmas,
    sample_ddim,
    sample_euler,
)
from sing_core.schedule import sd_alphas_cumprod

ALPHA_951 = 0.0081550  # method notes: ᾱ(951), σ(951) = 11.0283
SIGMA_MAX = 14.6146  # σ(999)


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64), torch.randn(
        2, 4, 8, 8, generator=g, dtype=torch.float64
    )


def test_a1111_timestep_grid():
    assert ddim_timesteps(20).tolist() == [1 + 50 * i for i in range(20)]
    assert ddim_timesteps(20)[-1] == 951
    assert ddim_timesteps(4).tolist() == [1, 251, 501, 751]
    with pytest.raises(ValueError, match="steps=0"):
        ddim_timesteps(0)


def test_k_diffusion_sigmas_start_at_sigma_max_and_end_at_zero():
    ac = sd_alphas_cumprod()
    sigmas = discrete_sigmas(20, ac)
    assert len(sigmas) == 21
    assert sigmas[0].item() == pytest.approx(SIGMA_MAX, abs=1e-4)
    assert sigmas[-2].item() == pytest.approx(0.029167, abs=1e-6)  # σ(0)
    assert sigmas[-1].item() == 0
    assert (sigmas[:-1].diff() < 0).all()
    # t = 999·(1 − 1/19) = 946.42…: log σ interpolated between t = 946 and 947
    all_sigmas = ((1 - ac) / ac).sqrt()
    t = 999 * 18 / 19
    w = t - math.floor(t)
    expected = math.exp((1 - w) * all_sigmas[946].log().item() + w * all_sigmas[947].log().item())
    assert sigmas[1].item() == pytest.approx(expected, rel=1e-12)


def test_start_points_follow_the_formulas(pair):
    x0_hat, x1 = pair
    timesteps, sigmas = ddim_timesteps(20), discrete_sigmas(20, sd_alphas_cumprod())
    torch.testing.assert_close(start_point("ddim", x1, None, timesteps, sigmas), x1)
    expected = math.sqrt(ALPHA_951) * x0_hat + math.sqrt(1 - ALPHA_951) * x1
    torch.testing.assert_close(start_point("ddim", x1, x0_hat, timesteps, sigmas), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(start_point("euler", x1, None, timesteps, sigmas), SIGMA_MAX * x1, rtol=1e-5, atol=0)
    expected = x0_hat + SIGMA_MAX * x1
    torch.testing.assert_close(start_point("euler", x1, x0_hat, timesteps, sigmas), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown sampler 'heun'"):
        start_point("heun", x1, None, timesteps, sigmas)


def test_samplers_first_call_sees_the_start_at_the_first_point(pair):
    x0_hat, x1 = pair
    ac = sd_alphas_cumprod()
    timesteps, sigmas = ddim_timesteps(20), discrete_sigmas(20, ac)
    calls = []

    def eps_model(x, alpha_cumprod):
        calls.append((x.clone(), alpha_cumprod))
        return torch.zeros_like(x)

    start = start_point("ddim", x1, x0_hat, timesteps, sigmas)
    sample_ddim(eps_model, start, timesteps, ac)
    assert len(calls) == 19  # A1111's ddim: n − 1 model calls for an n-point grid
    assert calls[0][1] == pytest.approx(ALPHA_951, abs=1e-7)
    assert torch.equal(calls[0][0], start)
    assert [c[1] for c in calls] == pytest.approx(ac[timesteps.flip(0)[:-1]].tolist())

    calls.clear()
    start = start_point("euler", x1, x0_hat, timesteps, sigmas)
    sample_euler(denoised_from_eps(eps_model), start, sigmas)
    assert len(calls) == 20
    # the ε model sees the VP input x_σ·√ᾱ at σ0 = σ_max, i.e. ddim_start at t = 999
    ac_max = 1 / (1 + SIGMA_MAX**2)
    assert calls[0][1] == pytest.approx(ac_max, rel=1e-4)
    expected = math.sqrt(ac_max) * x0_hat + math.sqrt(1 - ac_max) * x1
    torch.testing.assert_close(calls[0][0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_from_the_true_marginal_the_samplers_reproduce_the_data(sampler):
    """Started where the data's noised marginal lives, 20 steps of either sampler with the exact denoiser give
    samples of the prompt's brightness and texture: the samplers themselves are right; only the start can be wrong.
    """
    data = make_mixture(size=8, channels=2, levels=3, spread=0.3)
    denoiser = MixtureDenoiser(data)
    ac = sd_alphas_cumprod()
    timesteps, sigmas = ddim_timesteps(20), discrete_sigmas(20, ac)
    generator = torch.Generator().manual_seed(5)
    prompt_index = torch.full((400,), 4)  # white
    x0 = data.sample(prompt_index, generator)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)

    def eps_model(x, alpha_cumprod):
        return denoiser.eps(x, alpha_cumprod, prompt_index, 1.0)

    if sampler == "ddim":
        a = ac[timesteps[-1]].item()
        out = sample_ddim(eps_model, math.sqrt(a) * x0 + math.sqrt(1 - a) * noise, timesteps, ac)
    else:
        out = sample_euler(denoised_from_eps(eps_model), x0 + sigmas[0] * noise, sigmas)
    assert out.mean().item() == pytest.approx(data.true_mean()[4].item(), abs=0.03)
    assert out.std().item() == pytest.approx(x0.std().item(), rel=0.1)
