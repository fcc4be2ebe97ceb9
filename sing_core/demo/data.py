"""The demo's synthetic image-text data: per prompt, a Gaussian mixture of textured "latents" of known brightness.

Each prompt (pitch black … white) owns `levels` mixture components. Component k is a Gaussian image whose mean is the
constant image m_k (its brightness) and whose covariance is a texture: smooth or rough noise of amplitude τ_k plus a
small jitter of the brightness itself. All covariances are diagonal in one orthonormal basis, the 3-D DCT over
(channel, height, width), whose first coefficient is the mean times √N. That makes the data's exact posterior mean
E[x0 | x_t, c] cheap (denoiser.py) and puts the brightness in one coordinate, as in the real mechanism: at t = 999 it
carries √ᾱ·m·√N against unit noise, i.e. a signal √ᾱ·m against noise 1/√N on the mean.

The default 4×32×32 latent (N = 4096) is SD's latent of a 256×256 image: the mean's signal-to-noise ratio at t = 999 is
√ᾱ·|m|·√N ≈ 4.4·|m|, against 8.7·|m| for SD's 4×64×64 — the same regime (≫ 1), at a quarter of the cost.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

PROMPTS = ("pitch black", "dark grey", "mid grey", "light grey", "white")
PROMPT_BRIGHTNESS = (-1.0, -0.5, 0.0, 0.5, 1.0)
TEXTURE_AMPLITUDES = (0.1, 0.25, 0.4)  # per-pixel std of the texture, cycled over a prompt's levels
TEXTURE_SMOOTHNESS = (2.0, 6.0)  # corner frequency (in DCT index units) of smooth vs rough textures, cycled


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix D (n×n, float64): coefficients = D @ x, x = Dᵀ @ coefficients; row 0 = 1/√n."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


@functools.cache
def _dct_matrices(shape: tuple[int, int, int], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(dct_matrix(n).to(device) for n in shape)


@dataclass(frozen=True)
class MixtureData:
    """Per-prompt Gaussian mixtures in the 3-D DCT basis. K components, N = C·H·W coefficients.

    brightness[K]: each component's mean brightness m_k (mean over all C·H·W values of its mean image).
    prompt_of[K]: the prompt a component belongs to. weights[P, K]: mixture weights per prompt (0 off the prompt).
    means[K, N], variances[K, N]: each component's mean and (diagonal) covariance in the DCT basis.
    """

    shape: tuple[int, int, int]
    prompts: tuple[str, ...]
    brightness: torch.Tensor
    prompt_of: torch.Tensor
    weights: torch.Tensor
    means: torch.Tensor
    variances: torch.Tensor

    @property
    def numel(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    def true_mean(self) -> torch.Tensor:
        """E[brightness | prompt] for every prompt, [P]."""
        return self.weights @ self.brightness

    def unconditional_weights(self) -> torch.Tensor:
        """The "" prompt: every prompt equally likely, [K]."""
        return self.weights.mean(0)

    def to_coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] → [B, N] in the 3-D DCT basis (float64)."""
        dc, dh, dw = _dct_matrices(self.shape, x.device)
        y = dh @ x.double() @ dw.T  # H and W, batched over B and C
        return (dc @ y.flatten(2)).flatten(1)  # then C

    def from_coefficients(self, coefficients: torch.Tensor) -> torch.Tensor:
        """[B, N] → [B, C, H, W] (float64); the inverse of to_coefficients."""
        dc, dh, dw = _dct_matrices(self.shape, coefficients.device)
        c, h, w = self.shape
        y = (dc.T @ coefficients.double().reshape(-1, c, h * w)).reshape(-1, c, h, w)
        return dh.T @ y @ dw

    def sample(self, prompt_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x0 ~ p(x0 | c) for each prompt index in [B]; returns [B, C, H, W] float64."""
        component = torch.multinomial(self.weights[prompt_index], 1, generator=generator).squeeze(1)
        z = torch.randn(len(prompt_index), self.numel, generator=generator, dtype=torch.float64)
        return self.from_coefficients(self.means[component] + self.variances[component].sqrt() * z)


def make_mixture(
    *,
    size: int = 32,
    channels: int = 4,
    levels: int = 7,
    spread: float = 0.3,
    jitter: float = 0.02,
    prompts: tuple[str, ...] = PROMPTS,
    prompt_brightness: tuple[float, ...] = PROMPT_BRIGHTNESS,
) -> MixtureData:
    """The demo's data. Prompt p has `levels` equally likely brightness levels b_p + linspace(−spread, spread);
    level j has texture amplitude TEXTURE_AMPLITUDES[j % 3] and corner frequency TEXTURE_SMOOTHNESS[j % 2]; each
    component's brightness itself varies with std `jitter`.
    """
    if len(prompts) != len(prompt_brightness):
        raise ValueError(f"make_mixture: {len(prompts)} prompts but {len(prompt_brightness)} brightness values")
    if size < 2 or channels < 1 or levels < 1:
        raise ValueError(f"make_mixture: size={size}, channels={channels}, levels={levels}; need size ≥ 2, others ≥ 1")
    shape = (channels, size, size)
    n = channels * size * size
    fc, fh, fw = torch.meshgrid(*(torch.arange(s, dtype=torch.float64) for s in shape), indexing="ij")
    radius = (fh**2 + fw**2).sqrt().flatten()
    channel_weight = torch.where(fc.flatten() == 0, 1.0, 0.5)  # channels share most of the texture

    brightness, prompt_of, means, variances = [], [], [], []
    offsets = torch.linspace(-spread, spread, levels, dtype=torch.float64) if levels > 1 else torch.zeros(1)
    for p, centre in enumerate(prompt_brightness):
        for j, offset in enumerate(offsets.tolist()):
            amplitude = TEXTURE_AMPLITUDES[j % len(TEXTURE_AMPLITUDES)]
            corner = TEXTURE_SMOOTHNESS[j % len(TEXTURE_SMOOTHNESS)]
            spectrum = channel_weight / (1.0 + (radius / corner) ** 2)
            spectrum[0] = 0.0
            # Scale so the texture's per-pixel variance (sum of coefficient variances / N) is amplitude².
            variance = spectrum * (amplitude**2 * n / spectrum.sum())
            variance[0] = jitter**2 * n  # the DC coefficient is √N·mean, so its std is √N·jitter
            mean = torch.zeros(n, dtype=torch.float64)
            mean[0] = (centre + offset) * math.sqrt(n)
            brightness.append(centre + offset)
            prompt_of.append(p)
            means.append(mean)
            variances.append(variance)
    prompt_of_t = torch.tensor(prompt_of)
    weights = (prompt_of_t[None, :] == torch.arange(len(prompts))[:, None]).double()
    weights /= weights.sum(1, keepdim=True)
    return MixtureData(
        shape=shape,
        prompts=tuple(prompts),
        brightness=torch.tensor(brightness, dtype=torch.float64),
        prompt_of=prompt_of_t,
        weights=weights,
        means=torch.stack(means),
        variances=torch.stack(variances),
    )
