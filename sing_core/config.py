"""The module's network configuration, read from a diffusers UNet2DConditionModel config.json.

The SingDiffusion module is a UNet2DConditionModel with the time conditioning cut out, so its release ships the
diffusers config. UNetConfig keeps what the time-free network needs, ignores the keys that only shape the time
embedding, and refuses every value that would build a different network than the one SingUNet implements.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SUPPORTED_DOWN_BLOCKS = ("CrossAttnDownBlock2D", "DownBlock2D")
SUPPORTED_UP_BLOCKS = ("CrossAttnUpBlock2D", "UpBlock2D")
SUPPORTED_MID_BLOCKS = ("UNetMidBlock2DCrossAttn",)

# Keys that cannot change the time-free network: bookkeeping, the time embedding (removed), dropout (inference), and
# options diffusers passes only to block types we refuse (Simple* blocks, ResnetDownsample/Upsample blocks).
IGNORED_KEYS = frozenset(
    {
        "_class_name",
        "_diffusers_version",
        "_name_or_path",
        "_use_default_values",
        "subfolder",
        "flip_sin_to_cos",
        "freq_shift",
        "time_embedding_type",
        "time_embedding_dim",
        "time_embedding_act_fn",
        "timestep_post_act",
        "time_cond_proj_dim",
        "resnet_skip_time_act",
        "resnet_out_scale_factor",
        "cross_attention_norm",
        "mid_block_only_cross_attention",
        "addition_time_embed_dim",
        "addition_embed_type_num_heads",
        "projection_class_embeddings_input_dim",
        "dropout",
    }
)

# Keys whose only accepted value is diffusers' default: anything else adds layers or inputs SingUNet does not have.
# A list value of all-default entries (only_cross_attention = [false, ...]) is accepted too.
REQUIRED_DEFAULTS: dict[str, Any] = {
    "center_input_sample": False,
    "class_embed_type": None,
    "num_class_embeds": None,
    "addition_embed_type": None,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "dual_cross_attention": False,
    "only_cross_attention": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "attention_type": "default",
    "class_embeddings_concat": False,
    "mid_block_scale_factor": 1,
    "reverse_transformer_layers_per_block": None,
}

# With time_emb_proj removed, ResnetBlock2D computes norm2(conv1(...)) for either of these (diffusers resnet.py:
# "default" adds temb only when it is not None; the reference sets time_embedding_norm = None, which skips both).
ACCEPTED_TIME_SCALE_SHIFT = ("default", "scale_shift")

PARSED_KEYS = frozenset(
    {
        "in_channels",
        "out_channels",
        "sample_size",
        "block_out_channels",
        "layers_per_block",
        "attention_head_dim",
        "num_attention_heads",
        "cross_attention_dim",
        "down_block_types",
        "up_block_types",
        "mid_block_type",
        "norm_num_groups",
        "norm_eps",
        "use_linear_projection",
        "upcast_attention",
        "transformer_layers_per_block",
        "downsample_padding",
        "act_fn",
        "resnet_time_scale_shift",
    }
)


def _is_default(value: Any, default: Any) -> bool:
    """Equality that keeps JSON's types apart: false is not 0, null is not false, 1.0 is 1."""
    if default is None or isinstance(default, bool):
        return value is default
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == default
    return value == default


class ConfigError(ValueError):
    """A config that SingUNet cannot build; the message names the key, the value and the file."""


@dataclass(frozen=True)
class UNetConfig:
    """The time-free UNet's shape. Per-block values are normalised to tuples, one entry per down block.

    num_attention_heads is the number of heads (diffusers' config calls it attention_head_dim for this model class,
    a naming bug kept for compatibility: SD-1.5 has 8 heads, SD-2 [5, 10, 20, 20] heads of 64 channels).
    """

    in_channels: int = 4
    out_channels: int = 4
    sample_size: int | tuple[int, int] | None = 64
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: tuple[int, ...] = (2, 2, 2, 2)
    num_attention_heads: tuple[int, ...] = (8, 8, 8, 8)
    cross_attention_dim: int = 768
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up_block_types: tuple[str, ...] = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    mid_block_type: str = "UNetMidBlock2DCrossAttn"
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    use_linear_projection: bool = False
    upcast_attention: bool = False
    transformer_layers_per_block: tuple[int, ...] = (1, 1, 1, 1)
    downsample_padding: int = 1

    @property
    def num_blocks(self) -> int:
        return len(self.block_out_channels)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> UNetConfig:
        """Build and validate a config from a diffusers config dict; `source` (the file) goes into every error."""
        r = _Reader(d, source)
        r.check_keys()
        channels = r.ints("block_out_channels", d.get("block_out_channels", list(cls.block_out_channels)))
        n = len(channels)
        down = r.block_types("down_block_types", SUPPORTED_DOWN_BLOCKS, cls.down_block_types, n)
        up = r.block_types("up_block_types", SUPPORTED_UP_BLOCKS, cls.up_block_types, n)
        heads_key = "num_attention_heads" if d.get("num_attention_heads") is not None else "attention_head_dim"
        heads = r.per_block(heads_key, d.get(heads_key, 8), n)
        groups = r.groups(channels)
        # Every attention block splits its channels into heads: down block i, up block i (mirrored), the mid block.
        attention_blocks = {i for i in range(n) if down[i].startswith("CrossAttn")} | {n - 1}
        attention_blocks |= {n - 1 - i for i in range(n) if up[i].startswith("CrossAttn")}
        for i in sorted(attention_blocks):
            if channels[i] % heads[i]:
                raise r.fail(
                    heads_key, d.get(heads_key), f"block {i}: {channels[i]} channels do not split into {heads[i]} heads"
                )
        in_channels, out_channels = r.latent_channels()
        return cls(
            in_channels=in_channels,
            out_channels=out_channels,
            sample_size=r.sample_size(cls.sample_size),
            block_out_channels=channels,
            layers_per_block=r.per_block("layers_per_block", d.get("layers_per_block", 2), n),
            num_attention_heads=heads,
            cross_attention_dim=r.cross_attention_dim(n),
            down_block_types=down,
            up_block_types=up,
            mid_block_type=d.get("mid_block_type", cls.mid_block_type),
            norm_num_groups=groups,
            norm_eps=r.positive_number("norm_eps", 1e-5),
            use_linear_projection=r.flag("use_linear_projection"),
            upcast_attention=r.flag("upcast_attention"),
            transformer_layers_per_block=r.per_block(
                "transformer_layers_per_block", d.get("transformer_layers_per_block", 1), n
            ),
            downsample_padding=r.downsample_padding(),
        )

    def to_dict(self) -> dict[str, Any]:
        """A diffusers-compatible config dict (diffusers can build the same network from it); from_dict inverts it.

        The head counts go under diffusers' historical key attention_head_dim: its UNet2DConditionModel refuses
        num_attention_heads.
        """
        d = dataclasses.asdict(self)
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        d["attention_head_dim"] = d.pop("num_attention_heads")
        return {"_class_name": "UNet2DConditionModel", **d, "act_fn": "silu"}


class _Reader:
    """Reads one config dict; every failure names the key, the value and the file."""

    def __init__(self, d: dict[str, Any], source: str | None):
        self.where = f" in {source}" if source else ""
        if not isinstance(d, dict):
            raise ConfigError(f"the UNet config{self.where} is a {type(d).__name__}, not a JSON object")
        self.d = d

    def fail(self, key: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"UNet config{self.where}: {key} = {value!r}: {why}")

    def check_keys(self) -> None:
        for key, value in self.d.items():
            if key in IGNORED_KEYS or key in PARSED_KEYS:
                continue
            if key not in REQUIRED_DEFAULTS:
                raise self.fail(
                    key, value, "unknown key; SingUNet supports the UNet2DConditionModel configs of SingDiffusion's and"
                    " One More Step's modules"
                )
            default = REQUIRED_DEFAULTS[key]
            values = value if isinstance(value, list) else [value]
            if not values or not all(_is_default(v, default) for v in values):
                raise self.fail(key, value, f"only {default!r} is supported (the time-free SingUNet has no such layer)")
        get = self.d.get
        if get("act_fn", "silu") not in ("silu", "swish"):
            raise self.fail("act_fn", get("act_fn"), "only 'silu' is supported")
        if get("resnet_time_scale_shift", "default") not in ACCEPTED_TIME_SCALE_SHIFT:
            raise self.fail("resnet_time_scale_shift", get("resnet_time_scale_shift"), "ResnetBlock2D cannot build it")
        if get("mid_block_type", "UNetMidBlock2DCrossAttn") not in SUPPORTED_MID_BLOCKS:
            raise self.fail("mid_block_type", get("mid_block_type"), f"supported: {', '.join(SUPPORTED_MID_BLOCKS)}")

    def ints(self, key: str, value: Any) -> tuple[int, ...]:
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise self.fail(key, value, "expected an integer or a list of integers")
        if any(v <= 0 for v in items):
            raise self.fail(key, value, "expected positive integers")
        return tuple(items)

    def per_block(self, key: str, value: Any, n: int) -> tuple[int, ...]:
        items = self.ints(key, value)
        if not isinstance(value, (list, tuple)):
            return items * n
        if len(items) != n:
            raise self.fail(key, value, f"has {len(items)} entries for {n} blocks (block_out_channels)")
        return items

    def block_types(self, key: str, allowed: tuple[str, ...], default: tuple[str, ...], n: int) -> tuple[str, ...]:
        types = self.d.get(key, default)
        if not isinstance(types, (list, tuple)) or len(types) != n:
            raise self.fail(key, types, f"expected a list of {n} block types, one per block_out_channels entry")
        bad = [t for t in types if t not in allowed]
        if bad:
            raise self.fail(key, types, f"unsupported block type {bad[0]!r}; supported: {', '.join(allowed)}")
        return tuple(types)

    def groups(self, channels: tuple[int, ...]) -> int:
        value = self.d.get("norm_num_groups", 32)
        if value is None:
            raise self.fail("norm_num_groups", None, "None (no output norm) is not supported")
        groups = self.ints("norm_num_groups", value)[0]
        for c in channels:
            if c % groups:
                raise self.fail(
                    "block_out_channels", list(channels), f"{c} is not divisible by norm_num_groups = {groups}"
                )
        return groups

    def latent_channels(self) -> tuple[int, int]:
        in_channels = self.ints("in_channels", self.d.get("in_channels", 4))[0]
        out_channels = self.ints("out_channels", self.d.get("out_channels", 4))[0]
        if in_channels != out_channels:
            raise self.fail(
                "out_channels",
                out_channels,
                f"differs from in_channels = {in_channels}; the module predicts a latent of its input's shape",
            )
        return in_channels, out_channels

    def cross_attention_dim(self, n: int) -> int:
        value = self.d.get("cross_attention_dim")
        if value is None:
            raise self.fail("cross_attention_dim", value, "missing; the module needs the text encoder's width")
        widths = self.ints("cross_attention_dim", value)
        if len(set(widths)) != 1 or (isinstance(value, list) and len(widths) != n):
            raise self.fail("cross_attention_dim", value, "one text width for every block is required")
        return widths[0]

    def sample_size(self, default: Any) -> int | tuple[int, ...] | None:
        value = self.d.get("sample_size", default)
        if value is None:
            return None
        items = self.ints("sample_size", value)
        return items if isinstance(value, list) else items[0]

    def positive_number(self, key: str, default: float) -> float:
        value = self.d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(key, value, "expected a positive number")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.d.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, value, "expected true or false")
        return value

    def downsample_padding(self) -> int:
        value = self.d.get("downsample_padding", 1)
        if isinstance(value, bool) or value not in (0, 1):
            raise self.fail("downsample_padding", value, "only 0 or 1 is supported")
        return value
