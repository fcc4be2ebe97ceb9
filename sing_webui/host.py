"""What the loaded checkpoint is, and where the webui's sampler will start: read from the live objects.

The start is never assumed: a k-diffusion sampler starts at its own first sigma (any scheduler, the SGM noise
multiplier, Zero Terminal SNR), a timestep sampler at its own first timestep (DDIM and PLMS: the last of
range(0, 1000, 1000 // steps) + 1; UniPC in txt2img: the end of the schedule whatever the steps).
"""

from __future__ import annotations

import dataclasses

from modules import sd_samplers_common, sd_samplers_kdiffusion, sd_samplers_timesteps, shared

from sing_core.module import SingModule
from sing_core.schedule import sigma_from_alpha_cumprod
from sing_webui.failure import SingDiffusionError

SUPPORTED = "SD-1.x and SD-2.x checkpoints (one 4-channel latent space, the scaled-linear schedule)"


def family(sd_model) -> str:
    for flag, name in (("is_sdxl", "SDXL"), ("is_sd3", "SD3"), ("is_sd2", "SD-2.x"), ("is_sd1", "SD-1.x")):
        if getattr(sd_model, flag, False):
            return name
    return type(sd_model).__name__


def latent_channels(sd_model) -> int:
    # The UNet's output is the latent; sd_model.latent_channels defaults to 4 for any model the webui does not know.
    unet = getattr(getattr(sd_model, "model", None), "diffusion_model", None)
    return int(getattr(unet, "out_channels", getattr(sd_model, "latent_channels", 4)))


def check_fits(sd_model, module: SingModule, module_label: str) -> None:
    """Refuse a host the module cannot serve, saying what to do instead."""
    name = family(sd_model)
    if name not in ("SD-1.x", "SD-2.x"):
        raise SingDiffusionError(
            f"the loaded checkpoint is {name}; SingDiffusion modules serve {SUPPORTED}. Disable SingDiffusion for "
            f"this checkpoint or load an SD-1.x/2.x checkpoint.")
    channels = latent_channels(sd_model)
    if channels != module.latent_channels:
        raise SingDiffusionError(
            f"module {module_label} predicts {module.latent_channels}-channel latents but the loaded checkpoint "
            f"uses {channels}-channel latents. Choose a module made for this checkpoint or disable SingDiffusion.")


def host_text_width(sd_model) -> int | None:
    """Width of the host's text conditioning (768 for SD-1's CLIP-L); None when it is not a CLIP-L-style encoder."""
    transformer = getattr(getattr(getattr(sd_model, "cond_stage_model", None), "wrapped", None), "transformer", None)
    config = getattr(transformer, "config", None)
    return getattr(config, "hidden_size", None)


def resolve_text_source(choice: str, sd_model, module: SingModule) -> str:
    """auto: the host's own conditioning where it is the space the module was trained in (SD-1's CLIP-L at CLIP
    skip 1, same width), so emphasis and embeddings count; else SD-1.5's CLIP-L on the plain prompt."""
    fits = getattr(sd_model, "is_sd1", False) and host_text_width(sd_model) == module.cross_attention_dim
    if choice == "host" and not fits:
        raise SingDiffusionError(
            f"text source 'host' needs an SD-1.x checkpoint whose text encoder is {module.cross_attention_dim} "
            f"wide like the module's; the loaded checkpoint is {family(sd_model)}. Use text source 'module' or "
            "'auto'.")
    if choice != "auto":
        return choice
    return "host" if fits and shared.opts.CLIP_stop_at_last_layers == 1 else "module"


@dataclasses.dataclass(frozen=True)
class FirstPoint:
    """The sampler's first point: σ0 (VE) for all samplers, plus ᾱ0 for timestep samplers.

    scaling says what the sampler does to the unit noise it is handed in txt2img: "sigma" multiplies by σ0,
    "sgm" by √(1 + σ0²) (the SGM noise multiplier option), "none" uses it as x_t0 (timestep samplers).
    """

    sigma: float
    scaling: str
    alpha_cumprod: float | None = None
    timestep: int | None = None


def first_point(p, img2img: bool) -> FirstPoint:
    sampler = p.sampler
    if isinstance(sampler, sd_samplers_kdiffusion.KDiffusionSampler):
        if img2img:
            steps, t_enc = sd_samplers_common.setup_img2img_steps(p)
            sigma = sampler.get_sigmas(p, steps)[steps - t_enc - 1]
        else:
            sigma = sampler.get_sigmas(p, p.steps)[0]
        scaling = "sgm" if shared.opts.sgm_noise_multiplier and not img2img else "sigma"
        return FirstPoint(float(sigma), scaling)

    if isinstance(sampler, sd_samplers_timesteps.CompVisSampler):
        alphas_cumprod = p.sd_model.alphas_cumprod
        if img2img:
            # The webui noises the img2img start to timesteps[t_enc] (its sampler then first calls the model one
            # timestep lower, a quirk of its own); the module's start replaces that construction at its noise level.
            steps, t_enc = sd_samplers_common.setup_img2img_steps(p)
            timestep = int(sampler.get_timesteps(p, steps)[t_enc])
        elif getattr(sampler.func, "__name__", "") == "unipc":
            # UniPC's NoiseScheduleVP starts at continuous time 1, the last training timestep, whatever the steps.
            timestep = len(alphas_cumprod) - 1
        else:
            timestep = int(sampler.get_timesteps(p, p.steps)[-1])
        alpha_cumprod = float(alphas_cumprod[timestep].double())
        sigma = float(sigma_from_alpha_cumprod(alpha_cumprod))
        return FirstPoint(sigma, "none", alpha_cumprod, timestep)

    raise SingDiffusionError(
        f"sampler {p.sampler_name!r} ({type(sampler).__name__}) is neither a k-diffusion nor a timestep sampler, so "
        "its first point is unknown. Choose another sampler or disable SingDiffusion.", status_code=422)

