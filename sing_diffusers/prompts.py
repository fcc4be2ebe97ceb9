"""The module's text embeddings for a start: prompts and negative prompts as the pipelines take them, or ready
embeddings; read by the module's own text encoder ("module") or the pipeline's encode_prompt ("pipeline")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sing_core.kinds import TEXT_NAMES
from sing_diffusers.loading import LoadedModule
from sing_diffusers.refusals import SingDiffusersError
from sing_diffusers.text import PipelineEncodePrompt, TextEncoder, advice, pipeline_own_text

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


def module_prompt_list(
    module_prompt: str | Sequence[str] | None, prompts: list[str] | None, rows: int
) -> list[str] | None:
    """What the module reads instead of the prompt: None or "" keeps the prompt; one string for every row, or one
    per prompt. Ready prompt_embeds are the module's already, so they take no module prompt."""
    if module_prompt is None or module_prompt == "":
        return prompts
    if prompts is None:
        raise SingDiffusersError(
            "module_prompt is what the module reads instead of the prompt, and prompt_embeds are the module's "
            "embeddings already: give one or the other"
        )
    if isinstance(module_prompt, str):
        return [module_prompt] * rows
    listed = list(module_prompt)
    if len(listed) != rows or not all(isinstance(p, str) for p in listed):
        raise SingDiffusersError(
            f"module_prompt has {len(listed)} entries for {rows} prompts; give one string, or one per prompt"
        )
    return [p or prompt for p, prompt in zip(listed, prompts, strict=True)]


def module_encoder(pipe: Any, module: LoadedModule, text_encoder: str, clip_skip: int | None) -> TextEncoder:
    """The encoder the module reads with: its own ("module": given at load, bundled, or lent by the pipeline where
    the pipeline's is the one the module reads) or the pipeline's encode_prompt ("pipeline")."""
    kind, width = module.kind, module.sing.cross_attention_dim
    name = type(pipe).__name__
    if text_encoder == "module":
        own_text = module.module_text()
        if own_text is not None:
            return own_text
        own = pipeline_own_text(pipe, kind)
        if own is not None and own.width == width:
            return own
        found = f"its text encoder is {own.width} wide" if own is not None else "it has none to lend"
        raise SingDiffusersError(
            f"the module reads {width}-wide embeddings of {TEXT_NAMES[kind.text]} and {name} cannot lend them "
            f"({found}); load the module with "
            f"sing_diffusers.load_module(path, pipe, text_encoder=...): {advice(kind)}"
        )
    own = PipelineEncodePrompt(pipe, clip_skip) if getattr(pipe, "text_encoder", None) is not None else None
    if own is None or own.width != width:
        found = f"{own.width} wide" if own is not None else "missing"
        raise SingDiffusersError(
            f"text_encoder='pipeline' reads the prompt with {name}'s own encode_prompt, whose embeddings are "
            f"{found}; the module reads {width}-wide ones ({TEXT_NAMES[kind.text]}), so use text_encoder='module'"
        )
    return own


def embeddings(
    pipe: Any, module: LoadedModule, prompts: list[str] | None, negatives: list[str] | None, *, text_encoder: str,
    prompt_embeds: torch.Tensor | None, negative_prompt_embeds: torch.Tensor | None, guided: bool,
    clip_skip: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(cond, uncond) for the module, one row per prompt (uncond None when the module does not guide). The
    unconditional side is the negative prompt for SingDiffusion and "" for One More Step (kind.uncond_is_empty_prompt),
    both read by the module's encoder; negative_prompt_embeds, where given, are that side ready."""
    if text_encoder not in TEXT_ENCODERS:
        raise SingDiffusersError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got {text_encoder!r}")
    need_text = prompt_embeds is None or (guided and negative_prompt_embeds is None)
    encoder = module_encoder(pipe, module, text_encoder, clip_skip) if need_text else None
    cond = prompt_embeds if prompt_embeds is not None else encoder.encode(prompts)
    rows = cond.shape[0]
    uncond = None
    if guided:
        if negative_prompt_embeds is not None:
            uncond = negative_prompt_embeds
        elif module.kind.uncond_is_empty_prompt:
            uncond = encoder.encode([""]).expand(rows, -1, -1)
        else:
            uncond = encoder.encode(negatives)
    width = module.sing.cross_attention_dim
    for side, embeds in (("prompt", cond), ("unconditional", uncond)):
        if embeds is not None and (embeds.ndim != 3 or embeds.shape[-1] != width):
            raise SingDiffusersError(
                f"the module's {side} embeddings have shape {list(embeds.shape)}, the module reads [B, T, {width}] "
                f"({TEXT_NAMES[module.kind.text]}); {advice(module.kind)}"
            )
    return cond, uncond
