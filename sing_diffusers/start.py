"""start_latents: the module's DDIM step from t = 1 to the pipeline scheduler's own first point.

x1 is drawn exactly as the pipeline would draw its noise (diffusers' randn_tensor, same shape, device, dtype and
generator(s)), x̂0 from the module guided as its method says (sing_core.kinds: SingDiffusion's x0 with normalized
guidance, One More Step's −v with plain CFG against ""), and the start is written in the scheduler's form (see
first_point) so that, after the pipeline's init_noise_sigma and scale_model_input, the UNet's first input is
√ᾱ(t0)·x̂0 + √(1 − ᾱ(t0))·x1, i.e. x̂0 + σ0·x1 in σ terms: one step for every method, with the pipeline's own noise.
A scheduler that starts at zero terminal SNR already starts where that step lands (x1): the module does not run.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sing_core import SingModule, ddim_start, unit_noise_start
from sing_core.args import FIELD_BY_KEY, check_value
from sing_diffusers.first_point import FirstPoint, read_first_point
from sing_diffusers.loading import LoadedModule, as_loaded
from sing_diffusers.prompts import embeddings, module_prompt_list, negative_list, prompt_list
from sing_diffusers.refusals import SingDiffusersError, check_pipeline

NoiseDrawer = Callable[[Any, int, int, int, Any], torch.Tensor]  # (pipe, batch, height, width, generator) -> x1
STRENGTH = FIELD_BY_KEY["strength"]  # default, range and meaning from the one schema; only the keyword is ours
GUIDANCE = FIELD_BY_KEY["guidance_scale"]  # the module's own w: range from the same schema
logger = logging.getLogger(__name__)


class ZeroTerminalSnrWarning(UserWarning):
    """The pipeline's scheduler starts at zero terminal SNR, so the module did not run (the start is x1)."""


@dataclass(frozen=True)
class Start:
    x1: torch.Tensor  # the pipeline's own noise for these arguments and generator(s)
    latents: torch.Tensor  # what to pass to the pipeline as latents=
    height: int
    width: int


def start_latents(
    pipe: Any,
    module: LoadedModule | SingModule,
    prompt: str | Sequence[str] | None = None,
    negative_prompt: str | Sequence[str] | None = None,
    *,
    prompt_embeds: torch.Tensor | None = None,
    negative_prompt_embeds: torch.Tensor | None = None,
    text_encoder: str = "module",
    guidance_scale: float | None = None,
    num_inference_steps: int = 50,
    height: int | None = None,
    width: int | None = None,
    num_images_per_prompt: int = 1,
    generator: torch.Generator | list[torch.Generator] | None = None,
    timesteps: list[int] | None = None,
    sigmas: list[float] | None = None,
    clip_skip: int | None = None,
    module_strength: float = STRENGTH.default,
    module_guidance_scale: float | None = None,
    module_prompt: str | Sequence[str] | None = None,
) -> torch.Tensor:
    """The `latents` to pass to `pipe` (with the same arguments) so that sampling starts at the module's step.

    prompt_embeds / negative_prompt_embeds are the module's own embeddings (what its text encoder gives; for One
    More Step the negative side is its "") and skip the text encoders.
    text_encoder: "module" (the text the module reads, on the plain prompt, as trained) or "pipeline" (the
    pipeline's own encode_prompt: textual inversion, clip_skip; where its embeddings are what the module reads).
    guidance_scale: the pipeline's CFG scale (None: the pipeline's own default, 7.5 for SD, 5.0 for SDXL);
    SingDiffusion modules follow it unless module_guidance_scale is set.
    module_guidance_scale: the module's own w (sing_core.args' "guidance_scale"). None or 0: SingDiffusion follows
    guidance_scale (normalized guidance, w ≤ 1 the prompt alone); One More Step uses its default 1 (the prompt
    alone) and otherwise plain CFG against "" for every w > 0.
    module_prompt: what the module reads instead of the prompt (a string, or one per prompt; None or "": the
    prompt); the pipeline still reads the prompt.
    timesteps / sigmas / clip_skip: the same values you pass to the pipeline, where you pass any.
    module_strength: λ, sing_core.args' "strength" (its default and range; the default is the paper's method):
    λ·x̂0 takes the place of x̂0. Named apart from the img2img/inpaint pipelines' own `strength`, which generate
    passes on to them.
    """
    arguments = dict(locals())
    return plan_start(**arguments).latents


def plan_start(
    pipe: Any, module: LoadedModule | SingModule, prompt: Any, negative_prompt: Any, *, prompt_embeds: Any,
    negative_prompt_embeds: Any, text_encoder: str, guidance_scale: float | None, num_inference_steps: int,
    height: int | None, width: int | None, num_images_per_prompt: int, generator: Any, timesteps: Any, sigmas: Any,
    clip_skip: int | None, module_strength: float, module_guidance_scale: float | None = None,
    module_prompt: Any = None, draw_noise: NoiseDrawer | None = None,
) -> Start:
    """start_latents with the noise and the size it used; draw_noise replaces pipeline_noise where a pipeline
    draws its noise otherwise (generate's inpaint case)."""
    module = as_loaded(module)
    sing = module.sing
    strength = check_value(STRENGTH, module_strength, "sing_diffusers' module_strength")
    if module_guidance_scale is not None:
        module_guidance_scale = check_value(GUIDANCE, module_guidance_scale, "sing_diffusers' module_guidance_scale")
    check_pipeline(pipe, sing.kind, sing.latent_channels)
    if num_images_per_prompt < 1:
        raise SingDiffusersError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")
    prompts = prompt_list(prompt, prompt_embeds)
    if prompts is None and negative_prompt is not None:
        raise SingDiffusersError("with prompt_embeds give negative_prompt_embeds, not negative_prompt")
    rows = len(prompts) if prompts is not None else prompt_embeds.shape[0]
    negatives = negative_list(negative_prompt, rows) if prompts is not None else None
    module_prompts = module_prompt_list(module_prompt, prompts, rows)
    first = read_first_point(pipe.scheduler, num_inference_steps, timesteps, sigmas)
    height, width = pixel_size(pipe, height, width)
    x1 = (draw_noise or pipeline_noise)(pipe, rows * num_images_per_prompt, height, width, generator)
    if first.zero_terminal_snr:
        # The pipeline's own start x1 is already the sample at SNR 0, where the module's step lands on x1 too.
        note = (f"sing_diffusers: {first.scheduler} starts at zero terminal SNR ({first.zero_terminal_snr_reason}), so "
                "the module does not run: the start is the pipeline's own noise")
        warnings.warn(note, ZeroTerminalSnrWarning, stacklevel=3)  # for the caller (pytest.warns, -W error)
        logger.warning(note)  # for the console and log files
        return Start(x1, x1.clone(), height, width)

    w = sing.kind.effective_guidance(module_guidance_scale, pipeline_guidance(pipe, guidance_scale))
    cond, uncond = embeddings(
        pipe, module, module_prompts, negatives, text_encoder=text_encoder, prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_prompt_embeds, guided=sing.kind.needs_uncond(w), clip_skip=clip_skip,
    )
    cond = cond.repeat_interleave(num_images_per_prompt, dim=0)  # the pipelines' order: p0, p0, …, p1, p1, …
    uncond = None if uncond is None else uncond.repeat_interleave(num_images_per_prompt, dim=0)
    run_in_unet_dtype(pipe, sing)
    x0_hat = sing.predict_x0(x1, cond, uncond, w)
    return Start(x1, start_at(first, x0_hat, x1, strength), height, width)


def pipeline_guidance(pipe: Any, guidance_scale: float | None) -> float:
    """The CFG scale the pipeline will use: the one given, else its __call__'s own default."""
    if guidance_scale is not None:
        return float(guidance_scale)
    default = inspect.signature(pipe.__call__).parameters.get("guidance_scale")
    if default is None or not isinstance(default.default, (int, float)):
        raise SingDiffusersError(f"{type(pipe).__name__} has no default guidance_scale: give guidance_scale=")
    return float(default.default)


def run_in_unet_dtype(pipe: Any, sing: SingModule) -> None:
    """The module runs on the pipeline UNet's device in its dtype (a module loaded for another pipeline moves)."""
    unet = pipe.unet
    device = pipe._execution_device
    if sing.dtype != unet.dtype or sing.device != torch.device(device):
        sing.to(device=device, dtype=unet.dtype)


def pixel_size(pipe: Any, height: int | None, width: int | None) -> tuple[int, int]:
    """Height and width in pixels as the pipeline defaults them, refused where the VAE cannot take them."""
    if not height or not width:
        sample_size = pipe.unet.config.sample_size
        rows, columns = (sample_size, sample_size) if isinstance(sample_size, int) else sample_size[:2]
        height, width = rows * pipe.vae_scale_factor, columns * pipe.vae_scale_factor
    if height % 8 or width % 8:
        raise SingDiffusersError(f"height and width must be multiples of 8 (the pipelines require it), got "
                                 f"{height}x{width}")
    return int(height), int(width)


def pipeline_noise(pipe: Any, batch: int, height: int, width: int, generator: Any) -> torch.Tensor:
    """x1: the noise the pipeline would draw itself (its prepare_latents with latents=None, before init_noise_sigma)."""
    from diffusers.utils.torch_utils import randn_tensor

    check_generators(generator, batch)
    shape = (batch, pipe.vae.config.latent_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    return randn_tensor(shape, generator=generator, device=pipe._execution_device, dtype=noise_dtype(pipe))


def noise_dtype(pipe: Any) -> torch.dtype:
    """The pipelines draw in prompt_embeds' dtype, which encode_prompt sets to the text encoder's (SDXL's second
    one where it has two), else the UNet's."""
    for name in ("text_encoder_2", "text_encoder"):
        encoder = getattr(pipe, name, None)
        if encoder is not None:
            return encoder.dtype
    return pipe.unet.dtype


def check_generators(generator: Any, batch: int) -> None:
    if isinstance(generator, list) and len(generator) != batch:
        raise SingDiffusersError(
            f"{len(generator)} generators for {batch} images (prompts × num_images_per_prompt); give one generator, "
            "or one per image"
        )


def start_at(first: FirstPoint, x0_hat: torch.Tensor, x1: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """The latents to give the pipeline so that its scheduler's sample at the first step is the module's DDIM step."""
    if first.form == "vp":
        return ddim_start(x0_hat, x1, first.alpha_cumprod, strength)
    # The pipeline multiplies by init_noise_sigma: σ0, or √(σ0² + 1) (sing_core's "SGM noise multiplier" form).
    return unit_noise_start(x0_hat, x1, first.sigma, sgm_noise_multiplier=first.sgm_multiplier, strength=strength)
