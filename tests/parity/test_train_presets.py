"""The sd15 training preset is SD-1.5's UNet: diffusers' UNet2DConditionModel built from stable-diffusion-v1-5's
unet/config.json has exactly our keys and shapes plus the time conditioning the module does without."""

from __future__ import annotations

import torch

from sing_core.checkpoint import expected_shapes
from sing_core.train.architectures import preset_config
from sing_core.weights import is_ignored_key

# unet/config.json of stable-diffusion-v1-5 (the keys that shape the network).
SD15_UNET_CONFIG = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


def test_sd15_preset_has_sd15_unet_shapes_without_time():
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        reference = UNet2DConditionModel(**SD15_UNET_CONFIG)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    ours = expected_shapes(preset_config("sd15", 768))
    assert {k: s for k, s in theirs.items() if not is_ignored_key(k)} == ours
    assert {k for k in theirs if is_ignored_key(k)}  # the time embedding and projections exist there only
    assert sum(torch.Size(s).numel() for s in theirs.values()) == 859_520_964  # SD-1.5's published UNet size


def test_oms_b_preset_has_one_more_steps_module_shapes():
    """oms_module/config.json of h1t/oms_b_openclip_15_21: a diffusers UNet of this shape, time path aside, is the
    308 MB float16 module (154M parameters)."""
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in preset_config("oms-b", 1024).to_dict().items() if k != "num_attention_heads"}
    with torch.device("meta"):
        reference = UNet2DConditionModel(**{**config, "attention_head_dim": [5, 10, 20]})
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items() if not is_ignored_key(k)}
    assert theirs == expected_shapes(preset_config("oms-b", 1024))
    assert sum(torch.Size(s).numel() for s in theirs.values()) == 154_014_564
