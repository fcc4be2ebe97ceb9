"""The SingDiffusion start step: normalized guidance at t = 1 and the DDIM step to the host's first point.

At t = 1 the noisy sample is pure noise, x1 ~ N(0, I), so the DDIM noise estimate is exact (ε̂ = x1) and only
x̂0 = φ(x1, c) is needed. The deterministic DDIM step (η = 0) from t = 1 to the host sampler's first point t0 is

    x_t0 = √ᾱ(t0)·x̂0 + √(1 − ᾱ(t0))·x1                (VP form, timestep samplers)
    x_σ0 = x_t0 / √ᾱ(t0) = x̂0 + σ0·x1                 (VE form, k-diffusion samplers, σ0 = √((1 − ᾱ)/ᾱ))

Every function takes ᾱ or σ as a float or as a per-sample tensor (broadcast over C, H, W) and stays finite at the
zero-terminal-SNR limit (ᾱ → 0, σ → inf), where the step returns x1 unchanged.

`strength` λ (beyond the paper) scales the module's contribution: λ·x̂0 takes the place of x̂0. λ = 0 is the DDIM
step from x̂0 = 0 (in σ form exactly the plain Gaussian start x1·σ0), λ = 1 the paper's method, λ > 1 a stronger pull
toward the prompt's brightness. The steps are linear in x̂0, so λ interpolates between the two starts.
"""

from __future__ import annotations

import torch


def _per_sample(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """A float or a [B] tensor as float64 shaped [B, 1, 1, 1] (or a scalar) for broadcasting against `like`."""
    value = torch.as_tensor(value, dtype=torch.float64, device=like.device)
    if value.ndim == 1:
        value = value.reshape(-1, *([1] * (like.ndim - 1)))
    return value


def normalized_guidance(x0_cond: torch.Tensor, x0_uncond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """The reference's normalized classifier-free guidance of the module's x0 prediction.

    x̂0 = (u + w·(c − u)) / w. Plain CFG would scale the image by w; dividing by w keeps x̂0 on the data's scale.
    For w ≤ 1 there is no guidance and the cond prediction is returned.
    """
    if guidance_scale <= 1.0:
        return x0_cond
    w = guidance_scale
    return (x0_uncond + w * (x0_cond - x0_uncond)) / w


def ddim_start(
    x0_hat: torch.Tensor, x1: torch.Tensor, alpha_cumprod: torch.Tensor | float, strength: float = 1.0
) -> torch.Tensor:
    """x_t0 = √ᾱ·λ·x̂0 + √(1 − ᾱ)·x1: the DDIM (η = 0) step from t = 1 to a timestep sampler's first point."""
    alpha_cumprod = _per_sample(alpha_cumprod, x1)
    x = alpha_cumprod.sqrt() * (strength * x0_hat.double()) + (1.0 - alpha_cumprod).sqrt() * x1.double()
    return x.to(x1.dtype)


def sigma_start(
    x0_hat: torch.Tensor, x1: torch.Tensor, sigma: torch.Tensor | float, strength: float = 1.0
) -> torch.Tensor:
    """x_σ0 = λ·x̂0 + σ0·x1: the same point in the k-diffusion (VE) parametrisation. Infinite σ0 has no finite form."""
    sigma = _per_sample(sigma, x1)
    if torch.isinf(sigma).any():
        raise ValueError("sigma_start: σ0 is infinite (zero terminal SNR); use unit_noise_start for the sampler input")
    return (strength * x0_hat.double() + sigma * x1.double()).to(x1.dtype)


def unit_noise_start(
    x0_hat: torch.Tensor,
    x1: torch.Tensor,
    sigma: torch.Tensor | float,
    sgm_noise_multiplier: bool = False,
    strength: float = 1.0,
) -> torch.Tensor:
    """What to hand a σ sampler that scales its unit-noise input itself, so that it starts at λ·x̂0 + σ0·x1.

    Plain k-diffusion samplers start at x·σ0, so x = x1 + λ·x̂0/σ0. With the SGM noise multiplier they start at
    x·√(1 + σ0²), so x = (λ·x̂0 + σ0·x1)/√(1 + σ0²) = √ᾱ·λ·x̂0 + √(1 − ᾱ)·x1, the VP form. Both tend to x1 as σ0 → inf.
    """
    sigma = _per_sample(sigma, x1)
    if sgm_noise_multiplier:
        from sing_core.schedule import alpha_cumprod_from_sigma

        return ddim_start(x0_hat, x1, alpha_cumprod_from_sigma(sigma), strength)
    return (x1.double() + strength * x0_hat.double() / sigma).to(x1.dtype)
