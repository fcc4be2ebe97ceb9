"""The batch's prompts as the webui understands them at the first sampling step, for either text source.

host: the conditioning rows the webui itself computed (emphasis, textual inversion, CLIP skip, AND weights); at CFG
scale 1, where guidance follows it, the prompt alone (Forge computes no negative prompt there). SDXL's conditioning
is a dict: the module reads its cross-attention part, c["crossattn"] (CLIP-L ⊕ bigG, 2048 wide).
module: each sub-prompt as plain text, extra-network tags already removed by the webui, prompt editing
[a:b:when] and alternation resolved to what applies at step 0, emphasis "(word:1.2)" and BREAK stripped, for
the module's own tokenizer; the same for each image's negative prompt.

The module's side may differ from the sampler's: a module prompt replaces every image's prompt (One More Step's
"low-frequency control"), and a module whose kind guides against "" (uncond_is_empty_prompt) gets "" where
SingDiffusion gets the negative prompt. Either is encoded the text source's way (host: the webui's own
get_learned_conditioning; module: the module's encoder).
"""

from __future__ import annotations

import dataclasses

import torch
from modules import prompt_parser, shared

from sing_core.compose import RowWeights
from sing_core.kinds import ModuleKind
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


def crossattn(rows) -> torch.Tensor:
    """The rows the UNet cross-attends to: SDXL's conditioning is a dict (crossattn, vector), SD-1/2's a tensor."""
    return rows["crossattn"] if isinstance(rows, dict) else rows


def module_prompts(p, module_prompt: str) -> list[str]:
    """Each image's prompt for the module's side: the module prompt where one is given, else the image's own."""
    return [module_prompt] * len(p.prompts) if module_prompt else list(p.prompts)


def uncond_prompts(p, kind: ModuleKind) -> list[str]:
    """What the module guides against, per image: "" for One More Step, the negative prompt for SingDiffusion."""
    return [""] * len(p.prompts) if kind.uncond_is_empty_prompt else list(p.negative_prompts)


def module_text(p, encode, kind: ModuleKind, guidance_scale: float, module_prompt: str = "") -> BatchText:
    row_weights, flat_prompts, _ = prompt_parser.get_multicond_prompt_list(module_prompts(p, module_prompt))
    conds = encode([plain_text(prompt, p.steps) for prompt in flat_prompts])
    uncond = None
    if rules.needs_uncond(row_weights, guidance_scale, kind):
        uncond = encode([plain_text(prompt, p.steps) for prompt in uncond_prompts(p, kind)])
    return BatchText(conds, row_weights, uncond)


def host_text(p, c, uc, kind: ModuleKind, guidance_scale: float, module_prompt: str = "") -> BatchText:
    if module_prompt:  # the webui's own encoding of it, as it encodes the prompt (emphasis, embeddings, AND)
        c = prompt_parser.get_multicond_learned_conditioning(p.sd_model, module_prompts(p, module_prompt), p.steps)
    row_weights, conds = prompt_parser.reconstruct_multicond_batch(c, 0)
    source = rules.uncond_source(row_weights, guidance_scale, uc is not None, kind)
    if source == "encode":  # "" for OMS; for SingDiffusion, where Forge made none at CFG scale 1
        uc = prompt_parser.get_learned_conditioning(p.sd_model, uncond_prompts(p, kind), p.steps)
    uncond = crossattn(prompt_parser.reconstruct_cond_batch(uc, 0)) if source is not None else None
    return BatchText(crossattn(conds), row_weights, uncond)
