"""x̂0 for a whole webui batch: per-image prompts, AND-composed sub-prompts and the method's guidance, batched.

A batch of B images may carry R ≥ B conditioning rows (the webui's "a AND b :0.5" gives one row per sub-prompt,
each with a weight). With the module's unguided x0 prediction of each row and of each image's unconditional side u
(the negative prompt for SingDiffusion, "" for One More Step),

    SingDiffusion:  x̂0 = (u + w·Σ_k w_k·(c_k − u)) / w,   w = max(guidance_scale, 1)
    One More Step:  x̂0 = u + w·Σ_k w_k·(c_k − u)          (plain CFG, any w > 0)

which is each reference's guidance for one sub-prompt of weight 1, and composable diffusion at scale 1 for w = 1
(just c for a plain prompt, where u is not even computed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from sing_core.kinds import ModuleKind

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x1 rows, embedding rows) -> x0 rows
RowWeights = Sequence[Sequence[tuple[int, float]]]  # per image: (row index into conds, weight)


def is_plain(row_weights: RowWeights) -> bool:
    """Each image has one sub-prompt of weight 1: the reference's case."""
    return all(len(rows) == 1 and rows[0][1] == 1.0 for rows in row_weights)


def batched_forward(forward: Forward, parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Run (x1, emb) parts in one forward when their token counts match, else one forward per token count."""
    lengths = {emb.shape[1] for _, emb in parts}
    if len(lengths) == 1:
        out = forward(torch.cat([x for x, _ in parts]), torch.cat([emb for _, emb in parts]))
        return list(out.split([x.shape[0] for x, _ in parts]))
    return [forward(x, emb) for x, emb in parts]


def composable_x0(
    forward: Forward,
    x1: torch.Tensor,
    conds: torch.Tensor,
    row_weights: RowWeights,
    uncond: torch.Tensor | None,
    guidance_scale: float,
    kind: ModuleKind | None = None,
) -> torch.Tensor:
    """x̂0 [B, C, H, W] in x1's dtype for x1 [B, C, H, W], conds [R, T, D] addressed by row_weights, uncond
    [B, T', D]; `kind` (the module's, default SingDiffusion's) says which guidance. The forward may return any dtype
    (a half-precision module's): the guidance is computed in float32."""
    kind = kind or ModuleKind()
    if len(row_weights) != x1.shape[0]:
        raise ValueError(f"composable_x0: {len(row_weights)} prompts for a batch of {x1.shape[0]} latents")
    owner = torch.tensor([image for image, rows in enumerate(row_weights) for _ in rows], device=x1.device)
    order = [row for rows in row_weights for row, _ in rows]
    cond_rows = conds[order]
    w = max(float(guidance_scale), 1.0) if kind.normalized_guidance else float(guidance_scale)

    if w == 1.0 and is_plain(row_weights):
        return forward(x1[owner], cond_rows).to(x1.dtype)
    if uncond is None:
        raise ValueError("composable_x0: guidance or weighted sub-prompts need the negative prompt's embedding")

    # The guidance in float32 whatever the forward's dtype: in bf16 the sub-prompt weights themselves would round
    # (0.3 -> 0.30078) and c − u, a difference of two close predictions, would lose most of its bits.
    x0_cond, x0_uncond = (x0.float() for x0 in batched_forward(forward, [(x1[owner], cond_rows), (x1, uncond)]))
    weights = torch.tensor([weight for rows in row_weights for _, weight in rows], dtype=torch.float32,
                           device=x0_cond.device).view(-1, 1, 1, 1)
    delta = torch.zeros_like(x0_uncond).index_add_(0, owner, weights * (x0_cond - x0_uncond[owner]))
    guided = x0_uncond + w * delta
    return (guided / w if kind.normalized_guidance else guided).to(x1.dtype)
