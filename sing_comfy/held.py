"""HeldModule: a SingModule as ComfyUI's ModelPatcher holds models.

The patcher records where a model is by writing `model.device` and counters of its own on the model; SingModule's
device is a read-only property (its weights' device), so the patcher holds this thin nn.Module around it instead.
Moving it moves the SingModule's weights, which are this module's parameters.
"""

from __future__ import annotations

import torch

from sing_core.module import SingModule


class HeldModule(torch.nn.Module):
    def __init__(self, sing: SingModule):
        super().__init__()
        self.sing = sing
        self.device = sing.device  # the patcher's bookkeeping; the truth is self.sing.device

    def forward(self, x1: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.sing(x1, encoder_hidden_states)
