"""Small STAND-INS shaped like ComfyUI's objects, for testing the adapter's rules without a ComfyUI.

They carry only the attributes sing_comfy reads (the same names and meanings as ComfyUI v0.33.0's: a guider's
`conds` / `cfg` / `inner_model.model_sampling`, EPS noise scaling, KSAMPLER.max_denoise, a WrapperExecutor's
`class_obj`). They test our code, not ComfyUI: the live tier (tests/comfyui) runs the real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sing_core.schedule import sd_alphas_cumprod, sigma_from_alpha_cumprod


class ModelSamplingDiscrete:
    """Named as ComfyUI's class: the adapter tells eps/v models apart from flows by the model_sampling's classes."""


class EPS:
    """Named as ComfyUI's class (comfy.model_sampling.EPS)."""


class CONST:
    """Named as ComfyUI's flow class (comfy.model_sampling.CONST)."""


class StandInEpsSampling(ModelSamplingDiscrete, EPS):
    """model_sampling of an SD-1 eps model: 1000 sigmas and ComfyUI's EPS.noise_scaling."""

    def __init__(self):
        self.sigmas = sigma_from_alpha_cumprod(sd_alphas_cumprod()).float()
        self.sigma_max = self.sigmas[-1]

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        sigma = sigma.view(())
        scale = torch.sqrt(1.0 + sigma**2) if max_denoise else sigma
        return noise * scale + latent_image


class StandInFlowSampling(ModelSamplingDiscrete, CONST):
    """A flow model's model_sampling (its scaling is never reached: the adapter refuses it first)."""


@dataclass
class StandInInnerModel:
    model_sampling: StandInEpsSampling = field(default_factory=StandInEpsSampling)


@dataclass
class StandInGuider:
    """CFGGuider's attributes during sampling; cfg2 set makes it a DualCFGGuider."""

    conds: dict
    cfg: float = 7.0
    inner_model: StandInInnerModel = field(default_factory=StandInInnerModel)


@dataclass
class StandInDualGuider(StandInGuider):
    cfg2: float = 5.0


class StandInSampler:
    """KSAMPLER.max_denoise."""

    def max_denoise(self, guider, sigmas):
        sigma_max, sigma = float(guider.inner_model.model_sampling.sigma_max), float(sigmas[0])
        return math.isclose(sigma_max, sigma, rel_tol=1e-05) or sigma > sigma_max


class StandInExecutor:
    """A WrapperExecutor around the sampler: records what the wrapper passed on."""

    def __init__(self):
        self.class_obj = StandInSampler()
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return args[4]  # the noise the sampler would start from


class StandInPatcher:
    """A ModelPatcher's `.model`: the HeldModule around the SingModule."""

    def __init__(self, module):
        from sing_comfy.held import HeldModule

        self.model = HeldModule(module)


def cond(tensor: torch.Tensor, **options) -> dict:
    """One processed cond dict as a guider holds it."""
    return {"cross_attn": tensor, "model_conds": {}, **options}
