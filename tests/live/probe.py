"""Reading what the probe extension recorded: each sampling's first denoiser input, as the real sampler saw it."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import torch
from safetensors.torch import load


@dataclass
class Capture:
    sampler: str
    is_hr_pass: bool
    iteration: int
    prompts: list[str]
    x: torch.Tensor  # the sampler's input at step 0 for the batch [B, C, H, W] (σ form for k-diffusion, x_t for DDIM)
    sigma: torch.Tensor  # [B]: σ0 (k-diffusion) or t0 (timestep samplers)
    noise: torch.Tensor  # the unit noise the webui drew for the batch, reproduced with its ImageRNG
    text_cond: torch.Tensor  # the webui's conditioning rows at step 0
    text_uncond: torch.Tensor


def host_rows(webui, prompts: list[str]) -> torch.Tensor:
    """The loaded checkpoint's own conditioning rows of plain prompts (SDXL: the crossattn part)."""
    answer = webui.post("/singdiffusion-probe/encode", list(prompts))
    return load(base64.b64decode(answer["tensors"]))["rows"]


def reset(webui) -> None:
    webui.post("/singdiffusion-probe/reset")


def captures(webui) -> list[Capture]:
    out = []
    for item in webui.get("/singdiffusion-probe/captures"):
        tensors = load(base64.b64decode(item["tensors"]))
        out.append(Capture(item["sampler"], item["is_hr_pass"], item["iteration"], item["prompts"], **tensors))
    return out
