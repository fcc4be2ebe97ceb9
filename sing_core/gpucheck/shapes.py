"""The networks and sizes the GPU check measures: the real ones, and tiny stand-ins of the same layouts for the CPU
rehearsal."""

from __future__ import annotations

from dataclasses import dataclass

from sing_core.gpucheck.seams import SD15
from sing_core.kinds import OMS, OPENCLIP_H, ModuleKind

# One More Step's "b" modules (h1t/oms_b_openclip_15_21 and h1t/oms_b_openclip_xl share this config): three levels,
# 32-channel heads, SD-2's 1024-wide OpenCLIP text.
OMS_B = {
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [160, 320, 640],
    "layers_per_block": 2,
    "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": 1024,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 32,
}
TINY_SD15 = {**SD15, "block_out_channels": [32, 64, 64, 64], "layers_per_block": 1, "cross_attention_dim": 32,
             "norm_num_groups": 8}
TINY_OMS_B = {**OMS_B, "block_out_channels": [16, 32, 64], "layers_per_block": 1, "attention_head_dim": [1, 2, 4],
              "cross_attention_dim": 48, "norm_num_groups": 8}

SINGDIFFUSION_SD15 = ModuleKind()
OMS_SD = ModuleKind(OMS, "sd", OPENCLIP_H)
SIGMA_MAX = 14.6146  # SD-1.x/2.x's and SDXL's σ at t = 999: the start's scale


@dataclass(frozen=True)
class Network:
    name: str
    config: dict
    kind: ModuleKind
    guidance: float  # the w the parity rows guide with: the paper's CFG 7.5, OMS's README 2.0


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the real check and its rehearsal."""

    sd15: Network
    oms_b: Network
    side: int  # latent side at 512 px
    sdxl_side: int  # latent side at 1024 px
    tokens: int
    warmup: int
    rounds: int  # paired speed rounds
    train_batch: int
    train_steps: int  # timed steps per variant (after `warmup`)


FULL = Sizes(
    sd15=Network("SD-1.5 size", SD15, SINGDIFFUSION_SD15, 7.5),
    oms_b=Network("OMS-b size", OMS_B, OMS_SD, 2.0),
    side=64,
    sdxl_side=128,
    tokens=77,
    warmup=3,
    rounds=15,
    train_batch=8,
    train_steps=6,
)
REHEARSAL = Sizes(
    sd15=Network("SD-1.5 layout, tiny", TINY_SD15, SINGDIFFUSION_SD15, 7.5),
    oms_b=Network("OMS-b layout, tiny", TINY_OMS_B, OMS_SD, 2.0),
    side=8,
    sdxl_side=16,
    tokens=77,
    warmup=1,
    rounds=3,
    train_batch=2,
    train_steps=2,
)
