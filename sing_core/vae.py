"""The encoder half of SD-1.x/2.x's KL autoencoder (LDM's AutoencoderKL): images in [-1, 1] → latents, torch only.

Training the SingDiffusion module needs x0 = the latent the host model works in, so the images go through the same
VAE encoder as at generation time. The modules and their names follow ldm/modules/diffusionmodules/model.py
(Encoder, ResnetBlock, AttnBlock, Downsample) so a checkpoint's tensors load by name:

    encoder.conv_in, encoder.down.{i}.block.{j}.{norm1,conv1,norm2,conv2,nin_shortcut},
    encoder.down.{i}.downsample.conv, encoder.mid.{block_1,attn_1,block_2}, encoder.norm_out, encoder.conv_out,
    quant_conv

(under "first_stage_model." in a full SD checkpoint). SD's shape: 128 channels × (1, 2, 4, 4), two resnets per level,
attention only in the middle, GroupNorm(32, eps 1e-6), 4 latent channels; the encoder outputs the posterior's mean
and log-variance, quant_conv mixes them.

The host's latent space is the posterior latent times the scale factor 0.18215 (SD-1.x and SD-2.x; SDXL's VAE has
the same layout but 0.13025 and another latent space, see sing_core.vae_file).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SD_SCALE_FACTOR = 0.18215
GROUPS = 32  # LDM's Normalize(): GroupNorm(32, C, eps=1e-6) everywhere
EPS = 1e-6
LOGVAR_RANGE = (-30.0, 20.0)  # DiagonalGaussianDistribution clamps the log-variance to this


@dataclass(frozen=True)
class VaeEncoderConfig:
    """LDM's ddconfig names: ch, ch_mult, num_res_blocks, z_channels (double_z: conv_out gives mean and logvar)."""

    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4

    @property
    def downsampling(self) -> int:
        """Image side / latent side: every level but the last halves the resolution (8 for SD)."""
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple[int, ...]]) -> VaeEncoderConfig:
        """The shape of the encoder whose tensors have these shapes (keys without the checkpoint's prefix)."""
        ch, in_channels = shapes["encoder.conv_in.weight"][:2]
        levels = sorted({int(k.split(".")[2]) for k in shapes if k.startswith("encoder.down.")})
        blocks = {int(k.split(".")[4]) for k in shapes if k.startswith("encoder.down.0.block.")}
        return cls(
            in_channels=in_channels,
            ch=ch,
            ch_mult=tuple(shapes[f"encoder.down.{i}.block.0.conv1.weight"][0] // ch for i in levels),
            num_res_blocks=max(blocks) + 1,
            z_channels=shapes["encoder.conv_out.weight"][0] // 2,
        )


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels, eps=EPS)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the pixels, with 1×1 convolutions as projections."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v = (nn.Conv2d(channels, channels, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (proj(h).flatten(2).transpose(1, 2)[:, None] for proj in (self.q, self.k, self.v))  # [B, 1, HW, C]
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ / √C)·v, as LDM's bmm version
        return x + self.proj_out(attended[:, 0].transpose(1, 2).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # LDM pads right and bottom only


class Level(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, blocks: int, downsample: bool):
        super().__init__()
        self.block = nn.ModuleList(
            ResnetBlock(in_channels if j == 0 else out_channels, out_channels) for j in range(blocks)
        )
        self.downsample = Downsample(out_channels) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class Mid(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, config: VaeEncoderConfig):
        super().__init__()
        widths = [config.ch * m for m in config.ch_mult]
        self.conv_in = nn.Conv2d(config.in_channels, config.ch, 3, padding=1)
        self.down = nn.ModuleList(
            Level(config.ch if i == 0 else widths[i - 1], widths[i], config.num_res_blocks, i < len(widths) - 1)
            for i in range(len(widths))
        )
        self.mid = Mid(widths[-1])
        self.norm_out = _norm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 2 * config.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class VaeEncoder(nn.Module):
    """images [B, 3, H, W] in [-1, 1] (H, W multiples of config.downsampling) → the posterior N(mean, exp(logvar))
    over latents [B, z, H/8, W/8], before the scale factor."""

    def __init__(self, config: VaeEncoderConfig | None = None, scale_factor: float = SD_SCALE_FACTOR):
        super().__init__()
        self.config = config or VaeEncoderConfig()
        self.scale_factor = scale_factor
        self.encoder = Encoder(self.config)
        self.quant_conv = nn.Conv2d(2 * self.config.z_channels, 2 * self.config.z_channels, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.quant_conv(self.encoder(images)).chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The host-space latent x0 = scale_factor · posterior mean (see sing_train.encode for why the mean)."""
        factor = self.config.downsampling
        if images.ndim != 4 or images.shape[1] != self.config.in_channels or any(s % factor for s in images.shape[2:]):
            raise ValueError(
                f"VAE encoder: images must be [B, {self.config.in_channels}, H, W] with H and W multiples of "
                f"{factor}, got {list(images.shape)}"
            )
        with torch.inference_mode():
            mean, _ = self(images.to(self.conv_in_weight.device, self.conv_in_weight.dtype))
        return mean.float() * self.scale_factor

    @property
    def conv_in_weight(self) -> torch.Tensor:
        return self.encoder.conv_in.weight
