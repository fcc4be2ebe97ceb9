"""UNetConfig: the SD configs it must read, round trips, and the configs it must refuse with a clear message."""

import pytest

from sing_core import ConfigError, UNetConfig

# The UNet config.json files of runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2-1.
SD15 = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.6.0",
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
SD21 = {
    **SD15,
    "_diffusers_version": "0.10.0.dev0",
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "dual_cross_attention": False,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "sample_size": 96,
    "use_linear_projection": True,
    "upcast_attention": True,
    "class_embed_type": None,
    "resnet_time_scale_shift": "default",
}
SOURCE = "/modules/SingDiffusion/config.json"


def test_sd15_config_reads_attention_head_dim_as_the_number_of_heads():
    config = UNetConfig.from_dict(SD15, source=SOURCE)
    assert config.num_attention_heads == (8, 8, 8, 8)  # 8 heads of 40, 80, 160, 160 channels
    assert config.cross_attention_dim == 768
    assert config.layers_per_block == (2, 2, 2, 2)
    assert not config.use_linear_projection


def test_sd21_config_has_64_channel_heads():
    config = UNetConfig.from_dict(SD21, source=SOURCE)
    assert [c // h for c, h in zip(config.block_out_channels, config.num_attention_heads, strict=True)] == [64] * 4
    assert config.use_linear_projection
    assert config.upcast_attention
    assert config.cross_attention_dim == 1024


def test_num_attention_heads_takes_precedence():
    config = UNetConfig.from_dict({**SD15, "num_attention_heads": 4, "attention_head_dim": 80})
    assert config.num_attention_heads == (4, 4, 4, 4)


@pytest.mark.parametrize(
    "d", [SD15, SD21, {**SD15, "layers_per_block": [1, 2, 2, 1], "transformer_layers_per_block": 2}]
)
def test_to_dict_round_trips(d):
    config = UNetConfig.from_dict(d)
    again = UNetConfig.from_dict(config.to_dict())
    assert again == config
    assert again.to_dict() == config.to_dict()


def test_time_only_keys_are_ignored():
    d = {**SD15, "flip_sin_to_cos": False, "freq_shift": 1, "time_embedding_type": "fourier", "time_cond_proj_dim": 8}
    assert UNetConfig.from_dict(d) == UNetConfig.from_dict(SD15)


def test_scale_shift_resnets_are_accepted_since_time_removal_makes_them_plain():
    assert UNetConfig.from_dict({**SD15, "resnet_time_scale_shift": "scale_shift"}) == UNetConfig.from_dict(SD15)


BAD = [
    ("class_embed_type", "timestep", "only None"),
    ("addition_embed_type", "text", "only None"),
    ("encoder_hid_dim", 768, "only None"),
    ("dual_cross_attention", True, "only False"),
    ("only_cross_attention", [False, True, False, False], "only False"),
    ("center_input_sample", True, "only False"),
    ("conv_in_kernel", 7, "only 3"),
    ("mid_block_scale_factor", 2, "only 1"),
    ("resnet_time_scale_shift", "ada_group", "cannot build"),
    ("act_fn", "gelu", "only 'silu'"),
    ("mid_block_type", None, "supported: UNetMidBlock2DCrossAttn"),
    ("mid_block_type", "UNetMidBlock2DSimpleCrossAttn", "supported"),
    ("down_block_types", ["SimpleCrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "unsupported block type"),
    ("up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], "4"),
    ("attention_head_dim", [5, 10, 20], "3 entries for 4 blocks"),
    ("attention_head_dim", 7, "do not split into 7 heads"),
    ("norm_num_groups", 48, "not divisible by norm_num_groups"),
    ("norm_num_groups", None, "not supported"),
    ("out_channels", 8, "differs from in_channels = 4"),
    ("cross_attention_dim", None, "missing"),
    ("cross_attention_dim", [768, 1024, 1024, 1024], "one text width"),
    ("downsample_padding", 2, "only 0 or 1"),
    ("use_linear_projection", "yes", "true or false"),
    ("some_future_option", 1, "unknown key"),
]


@pytest.mark.parametrize(("key", "value", "cause"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_unsupported_values_name_key_value_file_and_cause(key, value, cause):
    with pytest.raises(ConfigError) as error:
        UNetConfig.from_dict({**SD15, key: value}, source=SOURCE)
    message = str(error.value)
    assert SOURCE in message
    assert key in message
    assert repr(value) in message
    assert cause in message


def test_missing_cross_attention_dim_is_refused():
    d = {k: v for k, v in SD15.items() if k != "cross_attention_dim"}
    with pytest.raises(ConfigError, match=r"cross_attention_dim = None: missing"):
        UNetConfig.from_dict(d, source=SOURCE)


def test_a_non_object_config_is_refused():
    with pytest.raises(ConfigError, match=r"config in x\.json is a list"):
        UNetConfig.from_dict([1, 2], source="x.json")
