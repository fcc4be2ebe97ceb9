"""Where the webui's sampler starts, read from the sampler itself, and the module's start in the form it takes.

Plain functions (no webui import): host.first_point tells a k-diffusion sampler from a timestep sampler (the host's
classes) and hands over the sampler, p and the options; these read only the attributes named in their docstrings
(tests hand them stand-ins with just those). The start is never assumed: a k-diffusion sampler starts at its own
first sigma (any scheduler, the SGM noise multiplier, Zero Terminal SNR), a timestep sampler at its own first
timestep, on the schedule the webui's model runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch

from sing_core.schedule import sigma_from_alpha_cumprod
from sing_core.start import ddim_start, unit_noise_start
from sing_webui.rules import RefusalError

SIGMA_SAMPLER, TIMESTEP_SAMPLER = "k-diffusion", "timestep"  # the kinds host.sampler_kind reads from the classes


class UnknownSamplerError(RefusalError):
    """A sampler whose first point cannot be read (the request's choice: 422); the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class FirstPoint:
    """The sampler's first point: σ0 (VE) for all samplers, plus ᾱ0 and t0 for timestep samplers.

    scaling says what the sampler does to the unit noise it is handed in txt2img: "sigma" multiplies by σ0,
    "sgm" by √(1 + σ0²) (the SGM noise multiplier option), "none" uses it as x_t0 (timestep samplers).
    """

    sigma: float
    scaling: str
    alpha_cumprod: float | None = None
    timestep: int | None = None


def sigma_first_point(sigmas: Sequence[float], steps: int, t_enc: int | None, sgm_noise_multiplier: bool) -> FirstPoint:
    """A k-diffusion sampler's start: the first of its sigmas in txt2img, sigmas[steps - t_enc - 1] in img2img
    (t_enc given), where the webui scales the noise by σ itself and the SGM option does not apply."""
    if t_enc is None:
        return FirstPoint(float(sigmas[0]), "sgm" if sgm_noise_multiplier else "sigma")
    return FirstPoint(float(sigmas[steps - t_enc - 1]), "sigma")


def first_timestep(timesteps: Sequence[int], t_enc: int | None, unipc: bool, train_timesteps: int) -> int:
    """A timestep sampler's start. txt2img: the last of its timesteps (DDIM, PLMS: range(0, 1000, 1000 // steps) +
    1), but UniPC's NoiseScheduleVP starts at continuous time 1, the last training timestep, whatever the steps.
    img2img: the webui noises the start to timesteps[t_enc] (its sampler then first calls the model one timestep
    lower, a quirk of its own); the module's start replaces that construction at its noise level."""
    if t_enc is not None:
        return int(timesteps[t_enc])
    if unipc:
        return train_timesteps - 1
    return int(timesteps[-1])


def timestep_first_point(alpha_cumprod: float, timestep: int) -> FirstPoint:
    return FirstPoint(float(sigma_from_alpha_cumprod(alpha_cumprod)), "none", alpha_cumprod, timestep)


def first_point(kind: str | None, p, steps: int, t_enc: int | None, opts,
                alphas_cumprod: Callable[[], torch.Tensor]) -> FirstPoint:
    """The first point of p.sampler, of the `kind` the host read (None: neither kind). A k-diffusion sampler (LCM
    and Forge's DDPM included): its get_sigmas(p, steps) and opts.sgm_noise_multiplier. A timestep sampler (DDIM,
    DDIM CFG++, PLMS, UniPC): its get_timesteps(p, steps) and func.__name__ ("unipc"), on `alphas_cumprod()`, the
    schedule it runs. p.sampler_name names the sampler in the refusal."""
    sampler = p.sampler
    if kind == SIGMA_SAMPLER:
        return sigma_first_point(sampler.get_sigmas(p, steps), steps, t_enc, bool(opts.sgm_noise_multiplier))
    if kind == TIMESTEP_SAMPLER:
        schedule = alphas_cumprod()
        timestep = first_timestep(sampler.get_timesteps(p, steps), t_enc,
                                  getattr(sampler.func, "__name__", "") == "unipc", len(schedule))
        return timestep_first_point(float(schedule[timestep].double()), timestep)
    raise UnknownSamplerError(
        f"sampler {p.sampler_name!r} ({type(sampler).__name__}) is neither a k-diffusion nor a timestep sampler, so "
        "its first point is unknown. Choose another sampler or disable SingDiffusion.")


def start_value(point: FirstPoint, img2img: bool, x0_hat: torch.Tensor, x1: torch.Tensor, x: torch.Tensor,
                nmask: torch.Tensor | None, strength: float) -> torch.Tensor | None:
    """What the sampler is handed so that it starts at the module's DDIM step (None: nothing, the start stays).

    txt2img: its unit-noise input x, in the form its first point takes (a timestep sampler's x_t0 as it is, a σ
    sampler's scaled by σ0 or √(1 + σ0²)). img2img: the noise x1 it adds to the image x: inside the mask (nmask) the
    sampler starts at x + x1·σ0 (DDIM: the same, scaled by √ᾱ0); shifting x1 by (λ·x̂0 − x)/σ0 makes that
    λ·x̂0 + σ0·x1 there, and leaves the kept region and mask blending as they were. At σ0 = ∞ there is no shift."""
    if img2img:
        if not math.isfinite(point.sigma):
            return None
        return x1 + (nmask * (strength * x0_hat - x.float()) / point.sigma).to(x1.dtype)
    if point.scaling == "none":
        return ddim_start(x0_hat, x1.float(), point.alpha_cumprod, strength)
    return unit_noise_start(x0_hat, x1.float(), point.sigma, point.scaling == "sgm", strength)
