"""ddim_start and the σ form against diffusers' own scheduler arithmetic on the SD schedule."""

import diffusers  # the reference: missing, the parity tier fails (requirements/test.txt installs it), never skips
import pytest
import torch

from sing_core import ddim_start, sd_alphas_cumprod, sigma_from_alpha_cumprod, sigma_start


@pytest.fixture(scope="module")
def scheduler():
    return diffusers.DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )


def test_alphas_cumprod_equal_diffusers(scheduler):
    torch.testing.assert_close(sd_alphas_cumprod().float(), scheduler.alphas_cumprod, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("t", [751, 951, 961, 981, 999])
def test_ddim_start_equals_add_noise(scheduler, t):
    g = torch.Generator().manual_seed(t)
    x0_hat, x1 = torch.randn(3, 4, 8, 12, generator=g), torch.randn(3, 4, 8, 12, generator=g)
    expected = scheduler.add_noise(x0_hat, x1, torch.tensor([t] * 3))
    got = ddim_start(x0_hat, x1, sd_alphas_cumprod()[t])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("t", [751, 951, 999])
def test_sigma_form_matches_the_scheduler_sigma(scheduler, t):
    ac = scheduler.alphas_cumprod[t].double()
    sigma = ((1 - ac) / ac) ** 0.5
    assert sigma_from_alpha_cumprod(sd_alphas_cumprod()[t]).item() == pytest.approx(sigma.item(), rel=1e-6)
    g = torch.Generator().manual_seed(1)
    x0_hat, x1 = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    vp = scheduler.add_noise(x0_hat, x1, torch.tensor([t, t]))
    torch.testing.assert_close(sigma_start(x0_hat, x1, sigma), vp / ac.sqrt().float(), rtol=1e-5, atol=1e-5)


def test_sigma_max_is_14_6146(scheduler):
    euler = diffusers.EulerDiscreteScheduler.from_config(scheduler.config)
    assert float(euler.sigmas.max()) == pytest.approx(14.6146, abs=1e-4)
    assert sigma_from_alpha_cumprod(sd_alphas_cumprod()[999]).item() == pytest.approx(14.6146, abs=1e-4)
