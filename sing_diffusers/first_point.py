"""The scheduler's own first point: where the pipeline's first UNet call puts the sample, and how it gets there.

diffusers schedulers keep the sample in one of two forms:
- "vp": the sample is x_t = √ᾱ·x0 + √(1 − ᾱ)·ε itself (DDIM, PNDM, DDPM; the DPM-Solver, UniPC and DEIS family,
  whose ᾱ comes from their own σ, Karras or exponential sigmas included); init_noise_sigma is 1, scale_model_input
  is the identity.
- "sigma": the sample is x̂0 + σ·ε (Euler, Euler ancestral, Heun, LMS, KDPM2, DPM-Solver SDE); the pipeline multiplies
  the given latents by init_noise_sigma (σ_max, or √(σ_max² + 1) with "leading" spacing) and scale_model_input
  divides by √(σ² + 1) before the UNet.

Everything is read from a copy of the pipeline's scheduler after set_timesteps, as the pipeline will call it, and then
checked against the scheduler's own init_noise_sigma and scale_model_input: a scheduler outside these families, or
one whose numbers do not agree with its family, is refused rather than guessed at.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch

from sing_core import alpha_cumprod_from_sigma, sigma_from_alpha_cumprod
from sing_diffusers.refusals import SingDiffusersError

VP_TIMESTEP = ("DDIMScheduler", "PNDMScheduler", "DDPMScheduler")
VP_SIGMA = ("DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler",
            "DEISMultistepScheduler")
SIGMA = ("EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler",
         "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler", "DPMSolverSDEScheduler")
SUPPORTED = VP_TIMESTEP + VP_SIGMA + SIGMA
AGREE = 1e-5  # relative: the scheduler's float32 numbers against the family's formula
# ᾱ(t0) at or below this is a start at zero terminal SNR (diffusers' rescaled Euler keeps ᾱ(999) = 2⁻²⁴ ≈ 6e-8; SD's
# own schedule starts at 0.0047): the module's x̂0 would carry under 0.1 % of the start.
ZERO_SNR_ALPHA_CUMPROD = 1e-6


@dataclass(frozen=True)
class FirstPoint:
    scheduler: str
    timestep: float  # the first UNet call's timestep
    form: str  # "vp" or "sigma"
    alpha_cumprod: float  # ᾱ(t0) of the sample the first UNet call sees (0 at zero terminal SNR)
    sigma: float  # σ0 = √((1 − ᾱ)/ᾱ) (inf at zero terminal SNR)
    init_noise_sigma: float  # what the pipeline multiplies the given latents by
    rescaled_to_zero_snr: bool = False  # the scheduler's rescale_betas_zero_snr: the model samples from SNR 0

    @property
    def zero_terminal_snr(self) -> bool:
        """The pipeline already samples from zero terminal SNR (a rescaled schedule, or ᾱ(t0) ≈ 0): its own start
        x1 is where the module's step would land, so the module has nothing to fix."""
        return self.rescaled_to_zero_snr or self.alpha_cumprod <= ZERO_SNR_ALPHA_CUMPROD

    @property
    def zero_terminal_snr_reason(self) -> str:
        if self.rescaled_to_zero_snr:
            return "rescale_betas_zero_snr=True: the model was trained to start from pure noise"
        return f"ᾱ(t0) = {self.alpha_cumprod:.3g} at its first timestep {self.timestep:g}"

    @property
    def sgm_multiplier(self) -> bool:
        """A σ scheduler that scales unit noise by √(σ0² + 1) ("leading" spacing) rather than by σ0."""
        return self.form == "sigma" and not math.isclose(self.init_noise_sigma, self.sigma, rel_tol=AGREE)


def _refuse(name: str, why: str) -> SingDiffusersError:
    return SingDiffusersError(
        f"{name}: {why}, so SingDiffusion cannot tell where its sampling starts and does not guess; schedulers "
        f"that work: {', '.join(SUPPORTED)} (pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler."
        "config), for example)"
    )


def _step_index(scheduler: Any, t0: torch.Tensor) -> int:
    """The index the scheduler's first step will use (set by scale_model_input, or the scheduler's own lookup)."""
    index = getattr(scheduler, "step_index", None)
    if index is None and getattr(scheduler, "begin_index", None) is not None:
        index = scheduler.begin_index
    if index is None and hasattr(scheduler, "index_for_timestep"):
        index = scheduler.index_for_timestep(t0)
    return 0 if index is None else int(index)


def read_first_point(
    scheduler: Any, num_inference_steps: int | None, timesteps: list | None = None, sigmas: list | None = None
) -> FirstPoint:
    """The first point of `scheduler` for this many steps (or the pipeline's custom timesteps / sigmas)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps

    name = type(scheduler).__name__
    if name not in SUPPORTED:
        raise _refuse(name, "this scheduler is not one whose first point SingDiffusion knows how to read")
    if getattr(scheduler.config, "use_flow_sigmas", False):
        raise _refuse(name, "use_flow_sigmas is set (a flow-matching schedule, not SD-1.x/2.x's)")
    scheduler = copy.deepcopy(scheduler)  # set_timesteps and scale_model_input change a scheduler's state
    schedule, _ = retrieve_timesteps(scheduler, num_inference_steps, "cpu", timesteps, sigmas)
    t0 = schedule[0]
    init = float(scheduler.init_noise_sigma)
    ones = torch.ones(1, dtype=torch.float64)
    scale = float(scheduler.scale_model_input(ones, t0)[0])  # also sets the step index of σ schedulers
    index = _step_index(scheduler, t0)

    if name in SIGMA:
        form, sigma = "sigma", float(scheduler.sigmas[index])
        alpha_cumprod = float(alpha_cumprod_from_sigma(sigma))
        expected_scale, inits = 1.0 / math.sqrt(sigma**2 + 1.0), (sigma, math.sqrt(sigma**2 + 1.0))
    else:
        form, expected_scale, inits = "vp", 1.0, (1.0,)
        if name in VP_SIGMA:
            sigma = float(scheduler.sigmas[index])
            alpha_cumprod = float(alpha_cumprod_from_sigma(sigma))
        else:
            alpha_cumprod = float(scheduler.alphas_cumprod[int(t0)])
            sigma = float(sigma_from_alpha_cumprod(alpha_cumprod))
    if not math.isclose(scale, expected_scale, rel_tol=AGREE):
        raise _refuse(name, f"its scale_model_input multiplies by {scale:.6g} at the first step, not "
                            f"{expected_scale:.6g}")
    if not any(math.isclose(init, value, rel_tol=AGREE) for value in inits):
        raise _refuse(name, f"its init_noise_sigma is {init:.6g}, none of {', '.join(f'{v:.6g}' for v in inits)}")
    rescaled = bool(getattr(scheduler.config, "rescale_betas_zero_snr", False))
    return FirstPoint(name, float(t0), form, alpha_cumprod, sigma, init, rescaled)
