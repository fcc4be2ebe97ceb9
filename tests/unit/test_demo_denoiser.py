"""The demo's data and its exact denoiser E[x0 | x_t, c], checked against formulas that do not share its shortcuts."""

import math

import pytest
import torch

from sing_core.demo.data import dct_matrix, make_mixture
from sing_core.demo.denoiser import MixtureDenoiser


def test_dct_is_orthonormal_and_puts_the_mean_in_the_first_coefficient():
    for n in (1, 4, 7):
        d = dct_matrix(n)
        torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64))
    data = make_mixture(size=4, channels=3, levels=2)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = data.to_coefficients(x)
    torch.testing.assert_close(data.from_coefficients(y), x)
    torch.testing.assert_close(y[:, 0], x.mean(dim=(1, 2, 3)) * math.sqrt(data.numel))
    torch.testing.assert_close(y.norm(dim=1), x.flatten(1).norm(dim=1))


def test_samples_have_the_prompts_true_brightness():
    data = make_mixture(size=4, channels=2, levels=5, spread=0.3)
    assert data.true_mean().tolist() == pytest.approx([-1.0, -0.5, 0.0, 0.5, 1.0], abs=1e-12)
    prompt_index = torch.arange(5).repeat_interleave(4000)
    x0 = data.sample(prompt_index, torch.Generator().manual_seed(1))
    brightness = x0.mean(dim=(1, 2, 3)).reshape(5, 4000)
    # the levels spread ±0.3 around the prompt's brightness: std ≈ 0.21, so the mean of 4000 is good to ~0.01
    torch.testing.assert_close(brightness.mean(1), data.true_mean(), atol=0.02, rtol=0)
    assert brightness.min(1).values.tolist() == pytest.approx((data.true_mean() - 0.3).tolist(), abs=0.1)


def test_single_component_posterior_equals_the_dense_wiener_filter():
    """One Gaussian: E[x0 | y] = μ + a·Σ (a²Σ + s²I)⁻¹ (y − a·μ), with Σ built as a dense pixel covariance."""
    data = make_mixture(size=4, channels=2, levels=1, prompts=("only",), prompt_brightness=(0.4,))
    denoiser = MixtureDenoiser(data)
    basis = torch.kron(torch.kron(dct_matrix(2), dct_matrix(4)), dct_matrix(4))  # coefficients = basis @ x
    covariance = basis.T @ torch.diag(data.variances[0]) @ basis
    mean = basis.T @ data.means[0]
    alpha_cumprod = 0.2
    a, s2 = math.sqrt(alpha_cumprod), 1 - alpha_cumprod
    x_t = torch.randn(3, *data.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = x_t.flatten(1).T
    gain = a * covariance @ torch.linalg.inv(a * a * covariance + s2 * torch.eye(data.numel, dtype=torch.float64))
    expected = (mean[:, None] + gain @ (y - a * mean[:, None])).T.reshape(x_t.shape)
    got = denoiser.x0_cond(x_t, alpha_cumprod, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("prompt", [0, 3, None])
def test_mixture_posterior_matches_importance_sampling(prompt):
    """E[x0 | y] = E_p(x0)[x0·p(y | x0)] / E_p(x0)[p(y | x0)], estimated with draws from the prior and the forward
    process' Gaussian likelihood only, which checks the responsibilities of the closed form.
    """
    data = make_mixture(size=2, channels=1, levels=3, spread=0.4)
    denoiser = MixtureDenoiser(data)
    alpha_cumprod = 0.15
    a, s2 = math.sqrt(alpha_cumprod), 1 - alpha_cumprod
    generator = torch.Generator().manual_seed(3)
    n_draws = 400_000
    if prompt is None:
        prompt_index = torch.randint(len(data.prompts), (n_draws,), generator=generator)
    else:
        prompt_index = torch.full((n_draws,), prompt)
    x0 = data.sample(prompt_index, generator).flatten(1)
    x_t = torch.tensor([[[[0.3, -0.2], [0.1, 0.4]]], [[[-0.5, -0.6], [-0.1, -0.3]]]], dtype=torch.float64)
    for b in range(len(x_t)):
        log_weight = -0.5 * ((x_t[b].flatten() - a * x0) ** 2).sum(1) / s2
        weight = torch.softmax(log_weight, 0)
        estimate = (weight[:, None] * x0).sum(0).reshape(data.shape)
        if prompt is None:
            exact = denoiser.x0_uncond(x_t[b : b + 1], alpha_cumprod)[0]
        else:
            exact = denoiser.x0_cond(x_t[b : b + 1], alpha_cumprod, torch.tensor([prompt]))[0]
        torch.testing.assert_close(exact, estimate, atol=0.004, rtol=0)  # Monte-Carlo error here is ~0.001


def test_guided_eps_is_the_cfg_combination_and_w1_is_the_conditional():
    data = make_mixture(size=4, channels=1, levels=3)
    denoiser = MixtureDenoiser(data)
    x_t = torch.randn(2, *data.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    prompt_index = torch.tensor([0, 4])
    alpha_cumprod = 0.05
    sqrt_a, sqrt_1ma = math.sqrt(alpha_cumprod), math.sqrt(1 - alpha_cumprod)
    eps_c = (x_t - sqrt_a * denoiser.x0_cond(x_t, alpha_cumprod, prompt_index)) / sqrt_1ma
    eps_u = (x_t - sqrt_a * denoiser.x0_uncond(x_t, alpha_cumprod)) / sqrt_1ma
    torch.testing.assert_close(denoiser.eps(x_t, alpha_cumprod, prompt_index, 1.0), eps_c)
    torch.testing.assert_close(denoiser.eps(x_t, alpha_cumprod, prompt_index, 7.5), eps_u + 7.5 * (eps_c - eps_u))
    # the prompts pull apart: black's x̂0 is darker than white's from the same x_t
    x0_c = denoiser.x0_cond(x_t[:1].expand(2, -1, -1, -1), alpha_cumprod, prompt_index)
    assert x0_c[0].mean() < -0.5 < 0.5 < x0_c[1].mean()
