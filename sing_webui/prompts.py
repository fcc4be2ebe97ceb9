"""The batch's prompts as the webui understands them at the first sampling step, for either text source.

host: the conditioning rows the webui itself computed (emphasis, textual inversion, CLIP skip, AND weights); at CFG
scale 1, where guidance follows it, the prompt alone (Forge computes no negative prompt there).
module: each sub-prompt as plain text, extra-network tags already removed by the webui, prompt editing
[a:b:when] and alternation resolved to what applies at step 0, emphasis "(word:1.2)" and BREAK stripped, for
SD-1.5's tokenizer; the same for each image's negative prompt.
"""

from __future__ import annotations

import dataclasses

import torch
from modules import prompt_parser, shared

from sing_core.compose import RowWeights
from sing_webui import rules


@dataclasses.dataclass
class BatchText:
    conds: torch.Tensor  # [R, T, D]
    row_weights: RowWeights  # per image: (row, weight)
    uncond: torch.Tensor | None  # [B, T', D]


def plain_text(prompt: str, steps: int) -> str:
    schedule = prompt_parser.get_learned_conditioning_prompt_schedules(
        [prompt], steps, None, getattr(shared.opts, "use_old_scheduling", False))[0]
    text = schedule[0][1]  # the webui's own reconstruct_*_batch(…, 0) picks this entry too
    return "".join(" " if weight < 0 else piece for piece, weight in prompt_parser.parse_prompt_attention(text))


def module_text(p, encode, guidance_scale: float) -> BatchText:
    row_weights, flat_prompts, _ = prompt_parser.get_multicond_prompt_list(list(p.prompts))
    conds = encode([plain_text(prompt, p.steps) for prompt in flat_prompts])
    uncond = None
    if rules.needs_uncond(row_weights, guidance_scale):
        uncond = encode([plain_text(prompt, p.steps) for prompt in p.negative_prompts])
    return BatchText(conds, row_weights, uncond)


def host_text(p, c, uc, guidance_scale: float) -> BatchText:
    row_weights, conds = prompt_parser.reconstruct_multicond_batch(c, 0)
    source = rules.uncond_source(row_weights, guidance_scale, uc is not None)
    if source == "encode":  # Forge made none at CFG scale 1: the webui's own encoder makes it
        uc = prompt_parser.get_learned_conditioning(p.sd_model, list(p.negative_prompts), p.steps)
    uncond = prompt_parser.reconstruct_cond_batch(uc, 0) if source is not None else None
    return BatchText(conds, row_weights, uncond)
