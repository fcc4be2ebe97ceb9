"""The demo's SingDiffusion module φ(x1, c) and its stand-in text encoder.

φ has the real module's interface, forward(x1 [B, C, H, W], encoder_hidden_states [B, T, D]) -> x̂0, and no timestep
input. It is deliberately small: a per-pixel MLP of the noise modulated by the prompt (FiLM), plus a per-channel
offset read from the prompt. Trained on x1 independent of x0, its optimum ignores x1 and returns
E[x0 | c], which for this data is a constant image at the prompt's mean brightness.
"""

from __future__ import annotations

import torch
from torch import nn


class PromptEncoder:
    """Fixed random token embeddings [T, D] per prompt; index len(prompts) is the empty prompt "" (unconditional).

    A stand-in for CLIP: φ only needs embeddings that tell the prompts apart, and a seeded table is reproducible.
    """

    def __init__(self, prompts: tuple[str, ...], tokens: int = 4, dim: int = 32, seed: int = 0):
        self.prompts = prompts
        self.uncond_index = len(prompts)
        generator = torch.Generator().manual_seed(seed)
        self.table = torch.randn(len(prompts) + 1, tokens, dim, generator=generator)

    @property
    def dim(self) -> int:
        return self.table.shape[-1]

    def __call__(self, prompt_index: torch.Tensor) -> torch.Tensor:
        return self.table[prompt_index]


class TinyX0Net(nn.Module):
    """A time-free x0 predictor: (x1, encoder_hidden_states) -> x̂0, same shape as x1.

    A per-pixel MLP on the noise (C → width → C, FiLM-modulated by the prompt) plus a per-channel offset from the
    prompt. Per-pixel layers are 1×1 convolutions written as matrix products, which CPUs run far faster.
    """

    def __init__(self, channels: int, cond_dim: int, width: int = 16):
        super().__init__()
        self.pixel_in = nn.Linear(channels, width)
        self.film = nn.Linear(cond_dim, 2 * width)
        self.pixel_out = nn.Linear(width, channels)
        self.offset = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, channels))

    def forward(self, x1: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x1.shape
        cond = encoder_hidden_states.mean(1)  # pool the tokens
        scale, shift = self.film(cond)[:, None, :].chunk(2, dim=2)
        pixels = x1.flatten(2).transpose(1, 2)  # [B, H·W, C]
        h = nn.functional.silu(self.pixel_in(pixels) * (1 + scale) + shift)
        out = self.pixel_out(h) + self.offset(cond)[:, None, :]
        return out.transpose(1, 2).reshape(B, C, H, W)
