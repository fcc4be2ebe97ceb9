import math

import pytest
import torch

from sing_core import (
    alpha_cumprod_from_sigma,
    ddim_start,
    normalized_guidance,
    sd_alphas_cumprod,
    sigma_from_alpha_cumprod,
    sigma_start,
    unit_noise_start,
)


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 4, 8, 12, generator=g), torch.randn(3, 4, 8, 12, generator=g)


def test_schedule_endpoints_match_the_method_notes():
    ac = sd_alphas_cumprod()
    assert ac[999].item() == pytest.approx(0.0046601, abs=1e-7)
    assert ac[981].item() == pytest.approx(0.0057755, abs=1e-7)
    assert sigma_from_alpha_cumprod(ac[999]).item() == pytest.approx(14.6146, abs=1e-4)
    assert sigma_from_alpha_cumprod(ac[0]).item() == pytest.approx(0.029167, abs=1e-6)


def test_sigma_and_alpha_are_inverse():
    ac = sd_alphas_cumprod()
    assert torch.allclose(alpha_cumprod_from_sigma(sigma_from_alpha_cumprod(ac)), ac, rtol=1e-12)


def test_ddim_start_is_the_vp_interpolation(pair):
    x0_hat, x1 = pair
    a = 0.0057755
    expected = math.sqrt(a) * x0_hat + math.sqrt(1 - a) * x1
    torch.testing.assert_close(ddim_start(x0_hat, x1, a), expected)


def test_ddim_start_per_sample_alphas(pair):
    x0_hat, x1 = pair
    alphas = torch.tensor([0.5, 0.01, 0.0])
    out = ddim_start(x0_hat, x1, alphas)
    for i, a in enumerate(alphas.tolist()):
        torch.testing.assert_close(out[i], ddim_start(x0_hat[i : i + 1], x1[i : i + 1], a)[0])
    torch.testing.assert_close(out[2], x1[2])  # ᾱ = 0: nothing of x̂0 survives


def test_sigma_form_is_the_vp_point_over_sqrt_alpha(pair):
    x0_hat, x1 = pair
    ac = sd_alphas_cumprod()[951]
    sigma = sigma_from_alpha_cumprod(ac)
    torch.testing.assert_close(sigma_start(x0_hat, x1, sigma), ddim_start(x0_hat, x1, ac) / ac.sqrt().float())


def test_unit_noise_start_lands_on_the_sigma_point_after_the_samplers_scaling(pair):
    x0_hat, x1 = pair
    sigma0 = 14.6146
    plain = unit_noise_start(x0_hat, x1, sigma0)
    torch.testing.assert_close(plain * sigma0, sigma_start(x0_hat, x1, sigma0), rtol=1e-5, atol=1e-5)
    sgm = unit_noise_start(x0_hat, x1, sigma0, sgm_noise_multiplier=True)
    torch.testing.assert_close(sgm * math.sqrt(1 + sigma0**2), sigma_start(x0_hat, x1, sigma0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sgm", [False, True])
def test_zero_terminal_snr_limit_returns_x1(pair, sgm):
    x0_hat, x1 = pair
    out = unit_noise_start(x0_hat, x1, math.inf, sgm_noise_multiplier=sgm)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, x1)
    torch.testing.assert_close(ddim_start(x0_hat, x1, 0.0), x1)
    with pytest.raises(ValueError, match="infinite"):
        sigma_start(x0_hat, x1, math.inf)


def test_near_zero_alpha_is_finite(pair):
    x0_hat, x1 = pair
    # A1111's Zero Terminal SNR option sets the last ᾱ to 4.9e-8 rather than 0: σ0 ≈ 4519, and the start is x1
    # with only a trace of x̂0 (x̂0/σ0 plain, √ᾱ·x̂0 with the SGM multiplier), computed here in float64.
    alpha = 4.8973451890853435e-08
    sigma = sigma_from_alpha_cumprod(alpha)
    x0_hat64, x1_64 = x0_hat.double(), x1.double()
    expected = {False: x1_64 + x0_hat64 / math.sqrt((1 - alpha) / alpha),
                True: math.sqrt(alpha) * x0_hat64 + math.sqrt(1 - alpha) * x1_64}
    for sgm in (False, True):
        out = unit_noise_start(x0_hat, x1, sigma, sgm_noise_multiplier=sgm)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.double(), expected[sgm], rtol=0, atol=1e-6)
        assert (out - x1).abs().max() < 1e-3  # the start is x1, up to x̂0's trace
        assert (out - x1).abs().max() > 0  # … and the trace is there: x̂0 was not dropped


def test_normalized_guidance(pair):
    c, u = pair
    w = 7.5
    torch.testing.assert_close(normalized_guidance(c, u, w), c - (1 - 1 / w) * u)
    assert normalized_guidance(c, u, 1.0) is c
    assert normalized_guidance(c, u, 0.5) is c


def test_dtype_is_preserved(pair):
    x0_hat, x1 = (t.half() for t in pair)
    assert ddim_start(x0_hat, x1, 0.3).dtype == torch.float16
    assert unit_noise_start(x0_hat, x1, 3.0).dtype == torch.float16
