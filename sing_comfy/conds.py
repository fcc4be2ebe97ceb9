"""The module's conditioning in ComfyUI: the guider's positive and negative as it holds them at the first step.

A guider (CFGGuider and its kin) holds `conds`, a dict of lists of cond dicts ("positive", "negative"; BasicGuider
has no negative, DualCFGGuider a "middle" too), after ComfyUI's processing: each with "cross_attn" [B or 1, 77·k, D]
and optionally "strength", "area" (h, w, y, x in latent pixels), "mask" + "mask_strength" and "timestep_start" /
"timestep_end" (sigmas). The rule, ComfyUI's own for its UNet's predictions at that step:

- a cond counts where the first sigma lies in its timestep range;
- each counting cond c_i weighs its prediction per pixel with w_i = strength × (mask × mask_strength | area box,
  feathered at inner edges as ComfyUI does), and a side's x̂0 is Σ w_i·φ(x1, c_i) / Σ w_i;
- the module always sees the whole latent (it predicts the whole image from noise), batch-1 conds are repeated to
  the batch, long prompts (77·k tokens) run as they are.

Guidance is the module's method's (sing_core.kinds): SingDiffusion's normalized guidance against the negative with
the node's guidance_scale, or (0) the guider's own `cfg` (DualCFGGuider: cond1 against the negative at
cfg_cond2_negative, its cond2 unused; without a negative, BasicGuider, the prompt alone); One More Step's plain CFG
against "" encoded by the module's own text encoder, at the node's guidance_scale (0: its default 1, the prompt
alone), never the sampler's negative or cfg.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from sing_core.compose import batched_forward
from sing_core.kinds import ModuleKind

from .family import CLIP_SOURCES

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SINGDIFFUSION_KIND = ModuleKind()  # the SingDiffusion release's kind, the default where none is given
FEATHER = 8  # latent pixels of ComfyUI's soft edge on area conds (comfy.samplers.get_area_and_mult)
RAW_LIMITS = ("area", "mask", "start_percent", "end_percent", "timestep_start", "timestep_end")


class CondsError(ValueError):
    """Conditioning the module cannot use; the message names the cause and the fix."""


@dataclasses.dataclass(frozen=True)
class Guidance:
    positive: list[dict]
    negative: list[dict]  # what the method guides against (the negative, or OMS's ""); empty: the prompt alone
    scale: float
    note: str | None = None  # what a guider other than CFGGuider contributes, said once
    kind: ModuleKind = SINGDIFFUSION_KIND


def repeat_to_batch(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """ComfyUI's repeat_to_batch_size: cut a larger batch, tile a smaller one."""
    if tensor.shape[0] >= batch:
        return tensor[:batch]
    return tensor.repeat(math.ceil(batch / tensor.shape[0]), *([1] * (tensor.ndim - 1)))[:batch]


def embedding(cond: Mapping[str, Any]) -> torch.Tensor:
    tensor = cond.get("cross_attn")
    if tensor is None:
        model_cond = cond.get("model_conds", {}).get("c_crossattn")
        tensor = getattr(model_cond, "cond", None)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
        raise CondsError("SingDiffusion: a conditioning has no text embedding (cross_attn); feed the sampler "
                         "conditioning from CLIPTextEncode")
    return tensor


def active(cond: Mapping[str, Any], sigma0: float) -> bool:
    """ComfyUI's timestep range test (sigmas run downwards: start is the larger)."""
    start, end = cond.get("timestep_start"), cond.get("timestep_end")
    return not ((start is not None and sigma0 > start) or (end is not None and sigma0 < end))


def _feather(region: torch.Tensor, offsets: Sequence[int], full: Sequence[int]) -> None:
    """ComfyUI's soft edges of an area without a mask: a linear ramp over up to 8 pixels at each inner edge."""
    for i, (offset, size) in enumerate(zip(offsets, region.shape[2:], strict=True)):
        ramp = min(FEATHER, size // 4)
        for t in range(ramp):
            scale = (t + 1) / ramp
            if offset != 0:
                region.narrow(i + 2, t, 1).mul_(scale)
            if offset + size < full[i]:
                region.narrow(i + 2, size - 1 - t, 1).mul_(scale)


def weight(cond: Mapping[str, Any], like: torch.Tensor) -> torch.Tensor:
    """The per-pixel weight [B, C, H, W] ComfyUI gives this cond's prediction."""
    dims = like.shape[2:]
    strength = float(cond.get("strength", 1.0))
    sizes, offsets = list(dims), [0] * len(dims)
    if "area" in cond:
        area = list(cond["area"])
        sizes, offsets = area[: len(dims)], area[len(area) // 2: len(area) // 2 + len(dims)]
        sizes = [min(full - off, size) for full, off, size in zip(dims, offsets, sizes, strict=True)]
    box = tuple(slice(off, off + size) for off, size in zip(offsets, sizes, strict=True))
    if "mask" in cond:
        mask = cond["mask"].to(like.device, like.dtype)[: like.shape[0]][(slice(None), *box)]
        mask = mask * float(cond.get("mask_strength", 1.0))
        region = mask.unsqueeze(1).repeat(like.shape[0] // mask.shape[0], like.shape[1], *([1] * len(dims)))
    else:
        region = torch.ones(like.shape[0], like.shape[1], *sizes, dtype=like.dtype, device=like.device)
        if "area" in cond:
            _feather(region, offsets, dims)
    out = torch.zeros_like(like)
    out[(slice(None), slice(None), *box)] = region * strength
    return out


def counting(conds: Sequence[Mapping[str, Any]], sigma0: float) -> list[Mapping[str, Any]]:
    """The conds of one side that count at the first step."""
    return [cond for cond in conds if active(cond, sigma0)]


def side_parts(x1: torch.Tensor, conds: Sequence[Mapping[str, Any]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The module's (x1, embedding) inputs for a side's counting conds, batch-1 conds repeated to the batch."""
    return [(x1, repeat_to_batch(embedding(cond).to(x1.device), x1.shape[0])) for cond in conds]


def combine(x1: torch.Tensor, conds: Sequence[Mapping[str, Any]], predictions: Sequence[torch.Tensor]
            ) -> torch.Tensor:
    """One side's x̂0 from its counting conds' predictions, weighted as ComfyUI weighs its UNet's."""
    if len(conds) == 1 and not any(key in conds[0] for key in ("area", "mask", "strength")):
        return predictions[0]
    total = torch.zeros_like(x1)
    count = torch.full_like(x1, 1e-37)  # ComfyUI's floor: a pixel no cond covers predicts 0
    for cond, prediction in zip(conds, predictions, strict=True):
        w = weight(cond, x1)
        total += prediction.to(x1.dtype) * w
        count += w
    return total / count


def module_x0(forward: Forward, x1: torch.Tensor, guidance: Guidance, sigma0: float) -> torch.Tensor:
    """x̂0 for the batch: the two sides guided as the module's kind says (kinds.ModuleKind.guide), or the positive
    alone where the method needs no unconditional side at this scale.

    Both sides run in one forward where their token counts match, as ComfyUI batches its UNet's cond and uncond."""
    positive = counting(guidance.positive, sigma0)
    if not positive:
        raise CondsError(f"SingDiffusion: no positive conditioning applies at the first step (sigma {sigma0:.4g}); "
                         "let one start at 0% (ConditioningSetTimestepRange) or remove the SingDiffusion node")
    negative = counting(guidance.negative, sigma0) if guidance.kind.needs_uncond(guidance.scale) else []
    predictions = batched_forward(forward, side_parts(x1, positive) + side_parts(x1, negative))
    x0_cond = combine(x1, positive, predictions[: len(positive)])
    if not negative:
        return x0_cond
    return guidance.kind.guide(x0_cond, combine(x1, negative, predictions[len(positive):]), guidance.scale)


def from_guider(guider: Any, guidance_scale: float, kind: ModuleKind = SINGDIFFUSION_KIND) -> Guidance:
    """The positive, negative and guidance scale the module uses for this guider."""
    conds = getattr(guider, "conds", None) or {}
    positive, negative = list(conds.get("positive") or []), list(conds.get("negative") or [])
    if kind.uncond_is_empty_prompt:  # OMS: "" comes from the node (for_kind), the sampler's cfg is never used
        return Guidance(positive, [], kind.effective_guidance(guidance_scale, None), None, kind)
    note = None
    if hasattr(guider, "cfg2"):  # DualCFGGuider: cfg1 (cond1 vs cond2), cfg2 (cond2 vs negative)
        cfg = float(guider.cfg2)
        note = "DualCFGGuider: the module uses cond1 against the negative at cfg_cond2_negative; cond2 is not used"
    else:
        cfg = float(getattr(guider, "cfg", 1.0))
    if not negative and "negative" not in conds:
        note = note or f"{type(guider).__name__} has no negative: the module uses the prompt alone"
    return Guidance(positive, negative, kind.effective_guidance(guidance_scale, cfg), note, kind)


def from_node(positive: list | None, negative: list | None, guidance: Guidance, empty: list | None = None
              ) -> Guidance:
    """The Apply node's own positive / negative (the module's text) in place of the guider's; for One More Step the
    node's "" (`empty`, encoded with its clip input) is the unconditional side."""
    if guidance.kind.uncond_is_empty_prompt:
        if guidance.kind.needs_uncond(guidance.scale) and empty is None:
            raise CondsError(f"SingDiffusion Apply: One More Step guidance {guidance.scale:g} guides against \"\" "
                             "encoded by the module's own text encoder: connect it to the Apply node's clip input "
                             f"({CLIP_SOURCES[guidance.kind.text]}), or set guidance_scale to 0 or 1 (the prompt "
                             "alone)")
        guidance = dataclasses.replace(guidance, negative=plain(empty, "clip") if empty is not None else [])
        if positive is None:
            return guidance
        return dataclasses.replace(guidance, positive=plain(positive, "positive"))
    if positive is None:
        if negative is not None:
            raise CondsError("SingDiffusion Apply: a negative without a positive; connect positive too (or neither, "
                             "to use the sampler's conditioning)")
        return guidance
    return dataclasses.replace(guidance, positive=plain(positive, "positive"),
                               negative=plain(negative, "negative") if negative is not None else [])


def plain(conditioning: list, name: str) -> list[dict]:
    """CONDITIONING ([[tensor, options], ...]) as cond dicts; area, mask and timestep limits belong on the sampler's."""
    out = []
    for tensor, options in conditioning:
        limits = [key for key in RAW_LIMITS if key in options]
        if limits:
            raise CondsError(f"SingDiffusion Apply: the {name} input carries {', '.join(limits)}; the module's text "
                             "applies to the whole image at the first step: connect plain CLIPTextEncode output and "
                             "keep area, mask and timestep settings on the sampler's conditioning")
        out.append({"cross_attn": tensor, **({"strength": options["strength"]} if "strength" in options else {})})
    return out
