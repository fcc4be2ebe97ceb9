"""The module's text embeddings for a start: prompts and negative prompts as the pipelines take them, or ready
embeddings; SD-1.5's CLIP-L ("module") or the pipeline's own encode_prompt ("pipeline", SD-1.x only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sing_diffusers.loading import LoadedModule
from sing_diffusers.refusals import SingDiffusersError
from sing_diffusers.text import TextEncoder, pipeline_clip

TEXT_ENCODERS = ("module", "pipeline")


def prompt_list(prompt: str | Sequence[str] | None, prompt_embeds: torch.Tensor | None) -> list[str] | None:
    if prompt is None:
        if prompt_embeds is None:
            raise SingDiffusersError("give a prompt (a string or a list of strings) or prompt_embeds")
        return None
    if prompt_embeds is not None:
        raise SingDiffusersError("give either prompt or prompt_embeds, not both (as the pipelines require)")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, Sequence) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    raise SingDiffusersError(f"prompt must be a string or a non-empty list of strings, got {prompt!r}")


def negative_list(negative_prompt: str | Sequence[str] | None, batch: int) -> list[str]:
    if negative_prompt is None:
        return [""] * batch
    if isinstance(negative_prompt, str):
        return [negative_prompt] * batch
    negatives = list(negative_prompt)
    if len(negatives) != batch or not all(isinstance(n, str) for n in negatives):
        raise SingDiffusersError(
            f"negative_prompt has {len(negatives)} entries for {batch} prompts; give one string, or one per prompt"
        )
    return negatives


def module_text(pipe: Any, module: LoadedModule, text_encoder: str) -> TextEncoder:
    width = module.sing.cross_attention_dim
    if text_encoder == "module":
        clip = module.module_clip_l()
        if clip is not None:
            return clip
        own = pipeline_clip(pipe)
        if own is not None and own.width == width:
            return own  # an SD-1.x pipeline's own CLIP-L, read as the reference reads SD-1.5's
        found = f"its text encoder is {own.width} wide" if own is not None else "it has no text encoder"
        raise SingDiffusersError(
            f"text_encoder='module' needs SD-1.5's CLIP-L ({width} wide) and {type(pipe).__name__} cannot lend it "
            f"({found}, as in SD-2 pipelines); load the module with sing_diffusers.load_module(path, pipe, "
            "clip_l=...) given a clip_l.safetensors, an SD-1.x checkpoint or folder, or an SD-1.x pipeline"
        )
    own = pipeline_clip(pipe)
    if own is None or own.width != width:
        found = f"{own.width} wide" if own is not None else "missing"
        raise SingDiffusersError(
            f"text_encoder='pipeline' reads the prompt with the pipeline's own text encoder, which is {found}; the "
            f"module reads {width}-wide CLIP-L embeddings, so this works on SD-1.x pipelines only: use "
            "text_encoder='module'"
        )
    return own


def embeddings(
    pipe: Any, module: LoadedModule, prompts: list[str] | None, negatives: list[str] | None, *, text_encoder: str,
    prompt_embeds: torch.Tensor | None, negative_prompt_embeds: torch.Tensor | None, guided: bool,
    clip_skip: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(cond, uncond) for the module, one row per prompt (uncond None when there is no guidance)."""
    if text_encoder not in TEXT_ENCODERS:
        raise SingDiffusersError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got {text_encoder!r}")
    need_text = prompt_embeds is None or (guided and negative_prompt_embeds is None)
    if need_text and text_encoder == "pipeline":
        module_text(pipe, module, text_encoder)  # refuses a pipeline whose encoder does not fit
        cond, uncond = pipe.encode_prompt(
            prompts, pipe._execution_device, 1, guided, negatives, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, clip_skip=clip_skip,
        )
        return cond, uncond if guided else None
    encoder = module_text(pipe, module, text_encoder) if need_text else None
    cond = prompt_embeds if prompt_embeds is not None else encoder.encode(prompts)
    if not guided:
        return cond, None
    uncond = negative_prompt_embeds if negative_prompt_embeds is not None else encoder.encode(negatives)
    return cond, uncond
