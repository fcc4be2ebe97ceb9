"""SingUNet: diffusers' UNet2DConditionModel (SD-1.x/2.x blocks) without its time conditioning.

The SingDiffusion module φ(x1, c) is trained as a UNet2DConditionModel whose ResnetBlock2Ds lost time_emb_proj and
time_embedding_norm, so no timestep reaches the network. With both None, diffusers' ResnetBlock2D computes

    h = conv1(silu(norm1(x)));  h = conv2(silu(norm2(h)));  out = shortcut(x) + h

and the time embedding the UNet still computes is never read. This file is that network and nothing else; module
and parameter names follow diffusers so its state dict (minus time_embedding.* and *.time_emb_proj.*) loads key for
key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from sing_core.config import UNetConfig

LOW_PRECISION = (torch.float16, torch.bfloat16)


def _silu(x: torch.Tensor) -> torch.Tensor:
    # In place when nothing records a graph: x is always a fresh normalisation output here, so this saves a copy.
    return F.silu(x, inplace=not torch.is_grad_enabled())


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H·W, C]; free for channels-last tensors, one copy otherwise."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


def _conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 convolution as the matrix product it is (torch's CPU conv falls back to a slow kernel for 1×1).

    Keeps x's memory format: W·x per image for NCHW, a linear over the channel axis for channels-last.
    """
    weight = conv.weight.flatten(1)
    if x.is_contiguous():
        out = torch.baddbmm(conv.bias.view(1, -1, 1), weight.expand(x.shape[0], -1, -1), x.flatten(2))
        return out.view(x.shape[0], -1, *x.shape[2:])
    return F.linear(x.permute(0, 2, 3, 1), weight, conv.bias).permute(0, 3, 1, 2)


class ResnetBlock(nn.Module):
    """ResnetBlock2D with time_emb_proj = None, time_embedding_norm = None (no temb, no scale-shift)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, eps: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_silu(self.norm1(x)))
        h = self.conv2(_silu(self.norm2(h)))
        return h.add_(x if self.conv_shortcut is None else _conv1x1(self.conv_shortcut, x))


class Attention(nn.Module):
    """Multi-head (cross-)attention; upcast_attention runs the product in float32 for half-precision inputs."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, upcast: bool = False):
        super().__init__()
        self.heads, self.upcast = heads, upcast
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        B, L, C = x.shape
        context = x if context is None else context
        q, k, v = (
            t.unflatten(-1, (self.heads, -1)).transpose(1, 2)
            for t in (self.to_q(x), self.to_k(context), self.to_v(context))
        )
        if self.upcast and q.dtype in LOW_PRECISION:
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out[0](out.transpose(1, 2).reshape(B, L, C))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner_dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, gate = self.proj(x).chunk(2, dim=-1)
        gate = F.gelu(gate)
        return gate * h if torch.is_grad_enabled() else gate.mul_(h)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        # Index 1 is diffusers' dropout; keeping the slot keeps the output layer's key at ff.net.2.
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class TransformerBlock(nn.Module):
    """BasicTransformerBlock: self-attention, cross-attention to the text, GEGLU feed-forward; pre-LayerNorm."""

    def __init__(self, dim: int, heads: int, context_dim: int, upcast: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, upcast=upcast)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim, upcast=upcast)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)).add_(x)
        x = self.attn2(self.norm2(x), context).add_(x)
        return self.ff(self.norm3(x)).add_(x)


class SpatialTransformer(nn.Module):
    """Transformer2DModel on continuous input: GroupNorm, project to tokens, transformer blocks, project back."""

    def __init__(self, channels: int, heads: int, layers: int, config: UNetConfig):
        super().__init__()
        self.norm = nn.GroupNorm(config.norm_num_groups, channels, eps=1e-6)
        linear = config.use_linear_projection
        project = (lambda: nn.Linear(channels, channels)) if linear else (lambda: nn.Conv2d(channels, channels, 1))
        self.proj_in = project()
        context_dim, upcast = config.cross_attention_dim, config.upcast_attention
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(channels, heads, context_dim, upcast) for _ in range(layers)
        )
        self.proj_out = project()

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        # proj_in/proj_out are Linear (SD-2) or 1×1 Conv2d (SD-1): the same map on tokens, applied as a linear.
        h = F.linear(_tokens(self.norm(x)), self.proj_in.weight.flatten(1), self.proj_in.bias)
        for block in self.transformer_blocks:
            h = block(h, context)
        h = F.linear(h, self.proj_out.weight.flatten(1), self.proj_out.bias)
        return x + h.view(B, H, W, C).permute(0, 3, 1, 2)  # x first: the sum takes x's memory format


class Downsample(nn.Module):
    def __init__(self, channels: int, padding: int):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:  # diffusers pads right and bottom only
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: torch.Size | None) -> torch.Tensor:
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:  # a side that was odd before a downsample: match the skip connection's size
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)


class DownBlock(nn.Module):
    """DownBlock2D, or CrossAttnDownBlock2D when heads is given: resnets (each followed by a transformer)."""

    def __init__(
        self, in_channels: int, out_channels: int, index: int, config: UNetConfig, *, attention: bool, downsample: bool
    ):
        super().__init__()
        groups, eps = config.norm_num_groups, config.norm_eps
        layers = config.layers_per_block[index]
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups, eps) for i in range(layers)
        )
        self.attentions = None
        if attention:
            heads, depth = config.num_attention_heads[index], config.transformer_layers_per_block[index]
            self.attentions = nn.ModuleList(
                SpatialTransformer(out_channels, heads, depth, config) for _ in range(layers)
            )
        self.downsamplers = nn.ModuleList([Downsample(out_channels, config.downsample_padding)]) if downsample else None

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class UpBlock(nn.Module):
    """UpBlock2D / CrossAttnUpBlock2D: each resnet eats the running features concatenated with one skip."""

    def __init__(
        self,
        in_channels: int,
        prev_channels: int,
        out_channels: int,
        index: int,
        config: UNetConfig,
        *,
        attention: bool,
        upsample: bool,
    ):
        super().__init__()
        mirrored = config.num_blocks - 1 - index  # up block i takes the per-block settings of down block n - 1 - i
        layers = config.layers_per_block[mirrored] + 1
        groups, eps = config.norm_num_groups, config.norm_eps
        self.resnets = nn.ModuleList(
            ResnetBlock(
                (prev_channels if i == 0 else out_channels) + (in_channels if i == layers - 1 else out_channels),
                out_channels,
                groups,
                eps,
            )
            for i in range(layers)
        )
        self.attentions = None
        if attention:
            heads, depth = config.num_attention_heads[mirrored], config.transformer_layers_per_block[mirrored]
            self.attentions = nn.ModuleList(
                SpatialTransformer(out_channels, heads, depth, config) for _ in range(layers)
            )
        self.upsamplers = nn.ModuleList([Upsample(out_channels)]) if upsample else None

    def forward(
        self, x: torch.Tensor, skips: list[torch.Tensor], context: torch.Tensor, size: torch.Size | None
    ) -> torch.Tensor:
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1))
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, size)
        return x


class MidBlock(nn.Module):
    """UNetMidBlock2DCrossAttn: resnet, transformer, resnet."""

    def __init__(self, channels: int, config: UNetConfig):
        super().__init__()
        groups, eps = config.norm_num_groups, config.norm_eps
        self.resnets = nn.ModuleList(ResnetBlock(channels, channels, groups, eps) for _ in range(2))
        heads, depth = config.num_attention_heads[-1], config.transformer_layers_per_block[-1]
        self.attentions = nn.ModuleList([SpatialTransformer(channels, heads, depth, config)])

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.resnets[1](self.attentions[0](self.resnets[0](x), context))


def _up_block_call(block: UpBlock, h, skips: tuple, context, size) -> torch.Tensor:
    return block(h, list(skips), context, size)


class SingUNet(nn.Module):
    """x̂0 = φ(x1, c): the time-free UNet. forward(x1 [B, C, H, W], encoder_hidden_states [B, T, D]) -> [B, C, H, W]."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        channels, n = config.block_out_channels, config.num_blocks
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownBlock(
                channels[max(i - 1, 0)],
                channels[i],
                i,
                config,
                attention=config.down_block_types[i] == "CrossAttnDownBlock2D",
                downsample=i < n - 1,
            )
            for i in range(n)
        )
        self.mid_block = MidBlock(channels[-1], config)
        reversed_channels = channels[::-1]
        self.up_blocks = nn.ModuleList(
            UpBlock(
                reversed_channels[min(i + 1, n - 1)],
                reversed_channels[max(i - 1, 0)],
                reversed_channels[i],
                i,
                config,
                attention=config.up_block_types[i] == "CrossAttnUpBlock2D",
                upsample=i < n - 1,
            )
            for i in range(n)
        )
        self.conv_norm_out = nn.GroupNorm(config.norm_num_groups, channels[0], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(channels[0], config.out_channels, 3, padding=1)
        # Training only: recompute each block's activations in the backward pass instead of keeping them (diffusers'
        # name). Inference (no grad) never checkpoints.
        self.gradient_checkpointing = False

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        self.gradient_checkpointing = enabled

    def _run(self, block, *args):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x1: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        # Sides that are not multiples of the total downsampling get odd intermediate sizes; the upsamplers then
        # resize to each skip connection's size instead of doubling (as diffusers does).
        factor = 2 ** (self.config.num_blocks - 1)
        exact_size = any(side % factor for side in x1.shape[-2:])
        # The activations follow the weights' memory format (module.to(memory_format=torch.channels_last) on CPU).
        channels_last = self.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        h = self.conv_in(x1.contiguous(memory_format=torch.channels_last) if channels_last else x1)
        skips = [h]
        for block in self.down_blocks:
            h, block_skips = self._run(block, h, encoder_hidden_states)
            skips += block_skips
        h = self._run(self.mid_block, h, encoder_hidden_states)
        for block in self.up_blocks:
            block_skips = skips[-len(block.resnets) :]
            del skips[-len(block.resnets) :]
            size = skips[-1].shape[-2:] if exact_size and block.upsamplers is not None else None
            # The skips go in as a tuple: UpBlock pops its list, and a checkpointed block runs twice.
            h = self._run(_up_block_call, block, h, tuple(block_skips), encoder_hidden_states, size)
        return self.conv_out(_silu(self.conv_norm_out(h))).contiguous()
