"""The demo's host model: the exact, Bayes-optimal denoiser E[x0 | x_t, c] of the Gaussian-mixture data.

A trained diffusion model approximates this posterior mean; here it is exact, so whatever the samples get wrong is the
sampling's fault, not the model's. In the DCT basis every component is a product of 1-D Gaussians, so with
x_t = a·x0 + s·ε (a = √ᾱ, s = √(1 − ᾱ)) and y the coefficients of x_t:

    p(y | k)       = Π_i N(y_i; a·μ_ki, d_ki),       d_ki = a²·v_ki + s²
    E[x0 | y, k]   = μ_k + g_k ⊙ (y − a·μ_k),       g_ki = a·v_ki / d_ki
    E[x0 | y, c]   = Σ_k r_k · E[x0 | y, k],        r_k ∝ π_ck · p(y | k)

All sums over the N coefficients are matrix products [B, N] @ [N, K], so one call costs about three GEMMs.
"""

from __future__ import annotations

import math

import torch

from sing_core.demo.data import MixtureData


class MixtureDenoiser:
    """x0-, ε- and classifier-free-guided predictions of the host model on VP inputs x_t at a given ᾱ."""

    def __init__(self, data: MixtureData):
        self.data = data
        self.log_cond_weights = data.weights.log()  # [P, K], −inf off the prompt
        self.log_uncond_weights = data.unconditional_weights().log()  # [K]

    def _posterior_coefficients(
        self, x_t: torch.Tensor, alpha_cumprod: float, log_weights: list[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """E[x0 | x_t] in the DCT basis for each set of per-sample log weights [B, K]; the likelihoods are shared."""
        a, s2 = math.sqrt(alpha_cumprod), 1.0 - alpha_cumprod
        mu, v = self.data.means, self.data.variances
        d = a * a * v + s2  # [K, N]
        y = self.data.to_coefficients(x_t)  # [B, N]
        squared = (y * y) @ (1.0 / d).T - 2.0 * a * (y @ (mu / d).T) + (a * a * (mu * mu / d)).sum(1)
        log_likelihood = -0.5 * (squared + d.log().sum(1))  # [B, K], up to a constant shared by all k
        g = a * v / d
        offset = mu * (1.0 - a * g)
        posteriors = []
        for weights in log_weights:
            r = torch.softmax(weights + log_likelihood, dim=1)
            posteriors.append(r @ offset + (r @ g) * y)
        return tuple(posteriors)

    def x0(self, x_t: torch.Tensor, alpha_cumprod: float, log_weights: torch.Tensor) -> torch.Tensor:
        """E[x0 | x_t] under the mixture with per-sample log weights [B, K]; x_t [B, C, H, W] → float64 like it."""
        return self.data.from_coefficients(self._posterior_coefficients(x_t, alpha_cumprod, [log_weights])[0])

    def x0_cond(self, x_t: torch.Tensor, alpha_cumprod: float, prompt_index: torch.Tensor) -> torch.Tensor:
        return self.x0(x_t, alpha_cumprod, self.log_cond_weights[prompt_index])

    def x0_uncond(self, x_t: torch.Tensor, alpha_cumprod: float) -> torch.Tensor:
        return self.x0(x_t, alpha_cumprod, self.log_uncond_weights.expand(len(x_t), -1))

    def eps(self, x_t: torch.Tensor, alpha_cumprod: float, prompt_index: torch.Tensor, guidance: float) -> torch.Tensor:
        """Classifier-free guided ε̂ = ε_u + w·(ε_c − ε_u), with ε = (x_t − √ᾱ·x̂0)/√(1 − ᾱ); w = 1 is ε_c alone.

        At a fixed x_t, ε is affine in x̂0, so this equals ε of x̂0_u + w·(x̂0_c − x̂0_u): one pass computes both
        posteriors from the same likelihoods and one inverse transform gives the guided x̂0.
        """
        cond_weights = self.log_cond_weights[prompt_index]
        if guidance == 1.0:
            (x0_coefficients,) = self._posterior_coefficients(x_t, alpha_cumprod, [cond_weights])
        else:
            uncond_weights = self.log_uncond_weights.expand(len(x_t), -1)
            cond, uncond = self._posterior_coefficients(x_t, alpha_cumprod, [cond_weights, uncond_weights])
            x0_coefficients = uncond + guidance * (cond - uncond)
        x0_hat = self.data.from_coefficients(x0_coefficients)
        return (x_t.double() - math.sqrt(alpha_cumprod) * x0_hat) / math.sqrt(1.0 - alpha_cumprod)
