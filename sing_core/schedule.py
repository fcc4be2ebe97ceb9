"""The Stable Diffusion 1.x/2.x noise schedule and the VP ↔ VE (ᾱ ↔ σ) conversions."""

from __future__ import annotations

import torch

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 0.00085
BETA_END = 0.012


def sd_alphas_cumprod(
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, beta_start: float = BETA_START, beta_end: float = BETA_END
) -> torch.Tensor:
    """ᾱ(t) of the "scaled linear" schedule SD-1.x/2.x were trained on, in float64.

    betas = linspace(√β_start, √β_end, T)²  →  ᾱ(999) = 0.0046601, σ(999) = 14.6146.
    """
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sigma_from_alpha_cumprod(alpha_cumprod: torch.Tensor | float) -> torch.Tensor:
    """σ = √((1 − ᾱ)/ᾱ); ᾱ = 0 (zero terminal SNR) gives σ = inf, not NaN."""
    alpha_cumprod = torch.as_tensor(alpha_cumprod, dtype=torch.float64)
    return ((1.0 - alpha_cumprod) / alpha_cumprod).sqrt()


def alpha_cumprod_from_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    """ᾱ = 1/(1 + σ²); σ = inf gives ᾱ = 0."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    return 1.0 / (1.0 + sigma**2)
