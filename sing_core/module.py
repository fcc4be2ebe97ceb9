"""SingModule: a loaded start module φ and its one job, x̂0 from pure noise x1 and the prompt, guided as its method
says (sing_core.kinds: SingDiffusion's normalized guidance on x0, or One More Step's plain CFG on v = −x0)."""

from __future__ import annotations

import torch
from torch import nn

from sing_core.config import UNetConfig
from sing_core.kinds import ModuleKind
from sing_core.unet import SingUNet


class SingModule(nn.Module):
    """The time-free UNet with its config and kind; name, path and short_hash are set by the loader
    (checkpoint.load_module)."""

    def __init__(self, config: UNetConfig, unet: SingUNet | None = None, kind: ModuleKind | None = None):
        super().__init__()
        self.config = config
        self.kind = ModuleKind() if kind is None else kind
        self.unet = SingUNet(config) if unet is None else unet
        self.name: str = ""
        self.path: str = ""
        self.short_hash: str = ""

    @property
    def latent_channels(self) -> int:
        return self.config.in_channels

    @property
    def cross_attention_dim(self) -> int:
        return self.config.cross_attention_dim

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.conv_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.conv_in.weight.device

    def forward(self, x1: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """The unguided x0 prediction of each row (the network's output read as its method says)."""
        return self.kind.raw_to_x0(self.unet(x1, encoder_hidden_states))

    def predict_x0(
        self,
        x1: torch.Tensor,
        cond: torch.Tensor,
        uncond: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """x̂0 for x1 [B, C, H, W] and text embeddings [B or 1, T, D], in x1's dtype and on x1's device.

        guidance_scale is the w the module uses (kinds.ModuleKind.effective_guidance resolves the user's setting).
        uncond is what the method guides against: the negative prompt for SingDiffusion, "" for One More Step, each
        encoded by the module's text encoder. Where the method needs it (kinds.ModuleKind.needs_uncond) cond and
        uncond share one batched forward when their token counts match; otherwise only cond is computed.
        """
        self._check_inputs(x1, cond, "cond")
        guided = uncond is not None and self.kind.needs_uncond(guidance_scale)
        if guided:
            self._check_inputs(x1, uncond, "uncond")
        with torch.inference_mode():
            x = x1.to(self.device, self.dtype)
            c = cond.to(self.device, self.dtype).expand(x.shape[0], -1, -1)
            if not guided:
                x0_hat = self(x, c)
            else:
                u = uncond.to(self.device, self.dtype).expand(x.shape[0], -1, -1)
                if u.shape[1] == c.shape[1]:
                    x0_cond, x0_uncond = self(torch.cat([x, x]), torch.cat([c, u])).chunk(2)
                else:  # e.g. a 154-token prompt against a 77-token negative: attention cannot batch them
                    x0_cond, x0_uncond = self(x, c), self(x, u)
                x0_hat = self.kind.guide(x0_cond.float(), x0_uncond.float(), guidance_scale)
        # Cloned outside inference mode: the host may update the latent in place or inside autograd-enabled code.
        return x0_hat.to(x1.device, x1.dtype).clone()

    def _check_inputs(self, x1: torch.Tensor, embeddings: torch.Tensor, name: str) -> None:
        what = f"start module {self.name or '(unnamed)'}"
        if x1.ndim != 4 or x1.shape[1] != self.latent_channels:
            raise ValueError(
                f"{what}: x1 must be a latent [B, {self.latent_channels}, H, W], got shape {list(x1.shape)}; the"
                f" module works on {self.latent_channels}-channel latents"
            )
        if embeddings.ndim != 3 or embeddings.shape[-1] != self.cross_attention_dim:
            raise ValueError(
                f"{what}: {name} must be text embeddings [B, T, {self.cross_attention_dim}], got shape"
                f" {list(embeddings.shape)}; encode the prompt with the text the module reads"
                f" ({self.kind.describe()})"
            )
        if embeddings.shape[0] not in (1, x1.shape[0]):
            raise ValueError(
                f"{what}: {name} has batch {embeddings.shape[0]} but x1 has batch {x1.shape[0]}; pass one embedding"
                " per latent or a single one for all"
            )
