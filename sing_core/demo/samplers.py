"""The two sampler families of the host, re-stated for the demo: A1111's DDIM (timesteps) and k-diffusion's Euler (σ).

Both follow AUTOMATIC1111 v1.10.1 so that their first points are the ones SingDiffusion must hit: DDIM starts at
t0 = 951 for 20 steps from unit noise x_t0; Euler starts at σ_max = σ(999) from σ0 × unit noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sing_core.schedule import alpha_cumprod_from_sigma, sigma_from_alpha_cumprod

EpsModel = Callable[[torch.Tensor, float], torch.Tensor]  # (x_t, ᾱ) -> ε̂
DenoisedModel = Callable[[torch.Tensor, float], torch.Tensor]  # (x_σ, σ) -> x̂0


def ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> torch.Tensor:
    """A1111's grid for timestep samplers: range(0, T, T // steps) + 1, ascending; its last entry is the start t0."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"ddim_timesteps: steps={steps}; use 1 … {num_train_timesteps}")
    return (torch.arange(0, num_train_timesteps, num_train_timesteps // steps) + 1).clamp(0, num_train_timesteps - 1)


def sample_ddim(eps_model: EpsModel, x: torch.Tensor, timesteps: torch.Tensor, alphas_cumprod: torch.Tensor):
    """Deterministic DDIM (η = 0) from x at timesteps[-1] down to timesteps[0], as A1111's ddim: for a grid of n points
    it calls the model n − 1 times and returns x at t = timesteps[0] (t = 1), not the last x̂0.
    """
    for index in range(len(timesteps) - 1, 0, -1):
        a_t = alphas_cumprod[timesteps[index]].item()
        a_prev = alphas_cumprod[timesteps[index - 1]].item()
        eps = eps_model(x, a_t)
        x0_hat = (x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
        x = math.sqrt(a_prev) * x0_hat + math.sqrt(1.0 - a_prev) * eps
    return x


def discrete_sigmas(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """k-diffusion's DiscreteSchedule.get_sigmas(steps): σ at t = linspace(T − 1, 0, steps), interpolated linearly in
    log σ between integer timesteps, then a final 0. sigmas[0] = σ(999) = σ_max.
    """
    if steps < 1:
        raise ValueError(f"discrete_sigmas: steps={steps}; need at least 1")
    log_sigmas = sigma_from_alpha_cumprod(alphas_cumprod).log()
    t = torch.linspace(len(alphas_cumprod) - 1, 0, steps, dtype=torch.float64)
    low, high = t.floor().long(), t.ceil().long()
    w = t - low
    sigmas = ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def denoised_from_eps(eps_model: EpsModel) -> DenoisedModel:
    """The k-diffusion view of an ε model (CompVisDenoiser): x_t = x_σ·√ᾱ with ᾱ = 1/(1 + σ²), x̂0 = x_σ − σ·ε̂."""

    def denoised(x_sigma: torch.Tensor, sigma: float) -> torch.Tensor:
        alpha_cumprod = alpha_cumprod_from_sigma(sigma).item()
        return x_sigma - sigma * eps_model(x_sigma * math.sqrt(alpha_cumprod), alpha_cumprod)

    return denoised


def sample_euler(model: DenoisedModel, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """k-diffusion's sample_euler without churn: x ← x + (σ_next − σ)·(x − D(x, σ))/σ.

    x must already be at sigmas[0] (the caller scales unit noise by σ0, as A1111 does).
    """
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d = (x - model(x, sigma)) / sigma
        x = x + (sigma_next - sigma) * d
    return x
