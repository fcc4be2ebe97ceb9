"""generate: the pipeline called with start_latents' latents (and, for inpainting, only inside the mask)."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from sing_core import SingModule
from sing_diffusers.loading import LoadedModule, as_loaded
from sing_diffusers.refusals import SingDiffusersError, check_pipeline, check_starts_from_nothing
from sing_diffusers.start import NoiseDrawer, Start, check_generators, noise_dtype, plan_start, start_latents

START_ARGS = tuple(inspect.signature(start_latents).parameters)[4:]  # after pipe, module, prompt, negative_prompt
# Arguments that shape the start and that the pipeline takes too; text_encoder and the module_* ones are the module's.
BOTH = ("prompt_embeds", "negative_prompt_embeds", "guidance_scale", "num_inference_steps", "height", "width",
        "num_images_per_prompt", "generator", "timesteps", "sigmas", "clip_skip")


def _image_layout(pipe: Any, pipeline_kwargs: dict, start_or_size: Any) -> dict:
    """The crop and resize the inpaint pipelines apply to image and mask (padding_mask_crop)."""
    height, width = start_or_size
    crop = pipeline_kwargs.get("padding_mask_crop")
    if crop is None:
        return {"height": height, "width": width, "resize_mode": "default", "crops_coords": None}
    coords = pipe.mask_processor.get_crop_region(pipeline_kwargs["mask_image"], width, height, pad=crop)
    return {"height": height, "width": width, "resize_mode": "fill", "crops_coords": coords}


def is_inpaint(pipe: Any, pipeline_kwargs: dict) -> bool:
    return getattr(pipe, "mask_processor", None) is not None and pipeline_kwargs.get("mask_image") is not None


def inpaint_mask(pipe: Any, pipeline_kwargs: dict, start: Start) -> torch.Tensor:
    """The inpaint pipelines' own mask at latent resolution (1 = regenerate), as their prepare_mask_latents makes it."""
    layout = _image_layout(pipe, pipeline_kwargs, (start.height, start.width))
    mask = pipe.mask_processor.preprocess(pipeline_kwargs["mask_image"], **layout)
    mask = torch.nn.functional.interpolate(mask, size=start.x1.shape[-2:]).to(start.x1.device)
    return mask.repeat(start.x1.shape[0] // mask.shape[0], 1, 1, 1)


def _copies(generator: Any) -> Any:
    def copy_one(g: torch.Generator) -> torch.Generator:
        return torch.Generator(g.device).set_state(g.get_state())

    if isinstance(generator, list):
        return [copy_one(g) for g in generator]
    return None if generator is None else copy_one(generator)


def inpaint_noise(pipeline_kwargs: dict) -> NoiseDrawer:
    """x1 for an inpaint pipeline whose UNet takes 4 channels: it samples the image's latent from the generator
    before it draws the noise, so x1 is drawn by its own prepare_latents on copies of the generators."""

    def draw(pipe: Any, batch: int, height: int, width: int, generator: Any) -> torch.Tensor:
        check_generators(generator, batch)
        layout = _image_layout(pipe, pipeline_kwargs, (height, width))
        image = pipe.image_processor.preprocess(pipeline_kwargs["image"], **layout).to(torch.float32)
        _, noise, _ = pipe.prepare_latents(
            batch, pipe.vae.config.latent_channels, height, width, noise_dtype(pipe), pipe._execution_device,
            _copies(generator), None, image=image, timestep=None, is_strength_max=True, return_noise=True,
            return_image_latents=True,
        )
        return noise

    return draw


def generate(pipe: Any, module: LoadedModule | SingModule, prompt: Any = None, negative_prompt: Any = None, **kwargs):
    """pipe(...) started at the module's step; returns the pipeline's output.

    Takes start_latents' arguments (passed on to the pipeline as well, text_encoder, module_strength,
    module_guidance_scale and module_prompt excepted: those are the module's) and any other keyword
    argument of the pipeline (image, mask_image, control image, output_type, ...). An inpaint pipeline re-noises the
    kept region with the given latents at every step, so outside the mask the latents stay the pipeline's own noise
    and only the masked region starts at the module's step. x1 takes the place of the pipeline's own noise draw, so
    its later draws from the generator (ancestral noise) are those of a run without the module; except with an
    inpaint pipeline whose UNet takes 4 channels, which samples the image's latent before its noise: there the later
    draws come one draw earlier.
    """
    start_args = {key: kwargs.pop(key) for key in START_ARGS if key in kwargs}
    sing = as_loaded(module).sing
    check_pipeline(pipe, sing.kind, sing.latent_channels)
    if "latents" in kwargs:
        raise SingDiffusersError("generate makes the latents itself; to start from your own, call the pipeline")
    check_starts_from_nothing(pipe, kwargs)
    embeds = start_args.get("prompt_embeds")
    if embeds is not None and embeds.shape[-1] != pipe.unet.config.cross_attention_dim:
        raise SingDiffusersError(
            f"prompt_embeds are the module's ({embeds.shape[-1]} wide) and {type(pipe).__name__} needs "
            f"{pipe.unet.config.cross_attention_dim}-wide ones: give the prompt (and module_prompt=, if the module "
            "should read another), or call start_latents(...) and pass its result as latents= to the pipeline "
            "together with the pipeline's own embeddings"
        )
    defaults = {key: p.default for key, p in inspect.signature(start_latents).parameters.items() if key in START_ARGS}
    inpaint = is_inpaint(pipe, kwargs)
    draw = inpaint_noise(kwargs) if inpaint and pipe.unet.config.in_channels == 4 else None
    start = plan_start(pipe, module, prompt, negative_prompt, **{**defaults, **start_args}, draw_noise=draw)
    latents = start.latents
    if inpaint:
        latents = torch.where(inpaint_mask(pipe, kwargs, start) > 0.5, latents, start.x1)
    shared = {key: value for key, value in {**defaults, **start_args}.items() if key in BOTH}
    shared |= {"height": start.height, "width": start.width}  # the size the noise was drawn for
    for key in ("guidance_scale", "timesteps", "sigmas", "clip_skip", "prompt_embeds", "negative_prompt_embeds"):
        if shared.get(key) is None:
            shared.pop(key, None)  # leave the pipeline's own default (not every pipeline takes these)
    return pipe(prompt=prompt, negative_prompt=negative_prompt, latents=latents, **shared, **kwargs)
