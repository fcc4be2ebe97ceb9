"""Gradient checkpointing of SingUNet from outside it: the resnets' and transformer blocks' activations are recomputed
in the backward pass instead of kept (torch.utils.checkpoint, non-reentrant, which DDP and autocast accept)."""

from __future__ import annotations

import functools

from torch import nn
from torch.utils.checkpoint import checkpoint

from sing_core.unet import ResnetBlock, TransformerBlock


def enable_gradient_checkpointing(unet: nn.Module) -> int:
    """Wraps every ResnetBlock and TransformerBlock forward; returns how many (0 means nothing to save)."""
    wrapped = 0
    for module in unet.modules():
        if isinstance(module, ResnetBlock | TransformerBlock):
            forward = module.forward

            @functools.wraps(forward)
            def recomputed(*args, _forward=forward, **kwargs):
                return checkpoint(_forward, *args, use_reentrant=False, **kwargs)

            module.forward = recomputed
            wrapped += 1
    return wrapped
