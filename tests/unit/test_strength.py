"""The strength λ of the module's contribution, in both forms of the start: x_t0 = √ᾱ·λ·x̂0 + √(1 − ᾱ)·x1 and
x_σ0 = λ·x̂0 + σ0·x1 (the unit-noise input x1 + λ·x̂0/σ0)."""

import math

import pytest
import torch

from sing_core import ddim_start, sigma_start, unit_noise_start
from sing_core.schedule import alpha_cumprod_from_sigma

SIGMA0 = 14.6146
ALPHA0 = 0.055719  # t = 751


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(0)
    x0_hat = torch.randn(3, 4, 8, 8, generator=generator)
    x1 = torch.randn(3, 4, 8, 8, generator=generator)
    return x0_hat, x1


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0, 2.0])
def test_vp_form_scales_x0_hat(pair, strength):
    x0_hat, x1 = pair
    expected = math.sqrt(ALPHA0) * strength * x0_hat.double() + math.sqrt(1 - ALPHA0) * x1.double()
    torch.testing.assert_close(ddim_start(x0_hat, x1, ALPHA0, strength), expected.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0, 2.0])
def test_sigma_form_scales_x0_hat(pair, strength):
    x0_hat, x1 = pair
    expected = strength * x0_hat.double() + SIGMA0 * x1.double()
    torch.testing.assert_close(sigma_start(x0_hat, x1, SIGMA0, strength), expected.float(), rtol=0, atol=1e-5)
    unit = unit_noise_start(x0_hat, x1, SIGMA0, strength=strength)
    torch.testing.assert_close(unit, (x1.double() + strength * x0_hat.double() / SIGMA0).float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("strength", [0.0, 0.5, 2.0])
def test_sgm_unit_noise_is_the_vp_form_at_the_same_strength(pair, strength):
    x0_hat, x1 = pair
    sgm = unit_noise_start(x0_hat, x1, SIGMA0, sgm_noise_multiplier=True, strength=strength)
    torch.testing.assert_close(sgm, ddim_start(x0_hat, x1, alpha_cumprod_from_sigma(SIGMA0), strength))


def test_zero_strength_is_the_plain_gaussian_start(pair):
    x0_hat, x1 = pair
    assert torch.equal(unit_noise_start(x0_hat, x1, SIGMA0, strength=0.0), x1)  # the sampler then starts at σ0·x1
    assert torch.equal(sigma_start(x0_hat, x1, SIGMA0, strength=0.0), (SIGMA0 * x1.double()).float())
    assert torch.equal(ddim_start(x0_hat, x1, ALPHA0, 0.0), (math.sqrt(1 - ALPHA0) * x1.double()).float())


def test_strength_interpolates_linearly_between_the_starts(pair):
    x0_hat, x1 = pair
    half = unit_noise_start(x0_hat, x1, SIGMA0, strength=0.5).double()
    ends = unit_noise_start(x0_hat, x1, SIGMA0, strength=0.0).double(), unit_noise_start(x0_hat, x1, SIGMA0).double()
    torch.testing.assert_close(half, (ends[0] + ends[1]) / 2, rtol=0, atol=1e-6)


def test_strength_1_is_bit_identical_to_the_papers_start(pair):
    x0_hat, x1 = pair
    # The paper's formulas written out as before strength existed.
    paper_vp = (math.sqrt(ALPHA0) * x0_hat.double() + math.sqrt(1 - ALPHA0) * x1.double()).float()
    paper_sigma = (x0_hat.double() + SIGMA0 * x1.double()).float()
    paper_unit = (x1.double() + x0_hat.double() / SIGMA0).float()
    assert torch.equal(ddim_start(x0_hat, x1, ALPHA0), paper_vp)
    assert torch.equal(ddim_start(x0_hat, x1, ALPHA0, 1.0), paper_vp)
    assert torch.equal(sigma_start(x0_hat, x1, SIGMA0, 1.0), paper_sigma)
    assert torch.equal(unit_noise_start(x0_hat, x1, SIGMA0, strength=1.0), paper_unit)
