"""Write a tiny random SD-2.x checkpoint file whose OpenCLIP ViT-H text encoder a module can read, for the live tier.

Only what makes it an SD-2.x checkpoint to a header reader (sing_core.host_family: the open_clip text tower under
cond_stage_model.model.*, and the UNet's last convolution for the latent width) and what the text encoder needs: the
text tower in open_clip's key layout, as SD-2.x checkpoints carry it (token and positional embeddings, resblocks,
ln_final, text_projection), `width` wide instead of 1024. The webui lists it among the checkpoints but never loads
it; SingDiffusion's Automatic ViT-H choice finds it there by its header.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

VOCABULARY = 49408
TOKENS = 77
PREFIX = "cond_stage_model.model."


def open_clip_text(width: int, layers: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    def randn(*shape, scale=0.02):
        return torch.randn(*shape, generator=generator) * scale

    keys = {"token_embedding.weight": randn(VOCABULARY, width),
            "positional_embedding": randn(TOKENS, width, scale=0.01),
            "ln_final.weight": 1.0 + randn(width, scale=0.1), "ln_final.bias": randn(width, scale=0.5),
            "text_projection": randn(width, width), "logit_scale": torch.tensor(4.6052)}
    for layer in range(layers):
        block = f"transformer.resblocks.{layer}."
        keys.update({
            block + "ln_1.weight": 1.0 + randn(width, scale=0.1), block + "ln_1.bias": randn(width),
            block + "ln_2.weight": 1.0 + randn(width, scale=0.1), block + "ln_2.bias": randn(width),
            block + "attn.in_proj_weight": randn(3 * width, width, scale=width**-0.5),
            block + "attn.in_proj_bias": randn(3 * width),
            block + "attn.out_proj.weight": randn(width, width, scale=width**-0.5),
            block + "attn.out_proj.bias": randn(width),
            block + "mlp.c_fc.weight": randn(4 * width, width, scale=width**-0.5),
            block + "mlp.c_fc.bias": randn(4 * width),
            block + "mlp.c_proj.weight": randn(width, 4 * width, scale=(4 * width)**-0.5),
            block + "mlp.c_proj.bias": randn(width),
        })  # fmt: skip
    return {PREFIX + key: value for key, value in keys.items()}


def write_tiny_sd2_text(path: Path, *, width: int = 64, layers: int = 3, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    state = open_clip_text(width, layers, generator)
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(32, 4, 3, 3, generator=generator)
    state["model.diffusion_model.out.2.weight"] = torch.randn(4, 32, 3, 3, generator=generator)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    return {"checkpoint": str(path), "text_width": width, "layers": layers}
