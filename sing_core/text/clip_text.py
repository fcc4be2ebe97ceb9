"""CLIP's text transformer in Hugging Face's CLIPTextModel key layout; returns last_hidden_state (after the final
layer norm), the conditioning SD-1.x pipelines and the SingDiffusion module use.

Pre-norm blocks: x += attn(LN1(x)) with a causal mask, x += fc2(act(fc1(LN2(x)))); token + learned position embeddings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

HEAD_DIM = 64  # CLIP's text towers use 64-wide heads (CLIP-L: 768 / 12)
ACTIVATIONS = {
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),  # OpenAI CLIP, and so SD-1.x's CLIP-L
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


@dataclass(frozen=True)
class ClipTextConfig:
    """The shape of a CLIP text tower; the defaults are SD-1.5's CLIP ViT-L/14 (Hugging Face CLIPTextConfig names)."""

    vocab_size: int = 49408
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        for field in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "max_position_embeddings",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"text encoder config: {field} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"text encoder config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"text encoder config: hidden_act {self.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        if not isinstance(self.layer_norm_eps, (int, float)) or not self.layer_norm_eps > 0:
            raise ValueError(f"text encoder config: layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClipTextConfig:
        """From a Hugging Face CLIPTextConfig dict (config.json, or a CLIPConfig's "text_config"); keys this model
        does not use are ignored."""
        if not isinstance(values, dict):
            raise ValueError(f"text encoder config must be a JSON object, got {type(values).__name__}")
        if isinstance(values.get("text_config"), dict):
            values = values["text_config"]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple[int, ...]], hidden_act: str = "quick_gelu") -> ClipTextConfig:
        """Infer the sizes from a state dict's shapes (HF keys); heads = hidden / 64, as in every CLIP text tower."""
        try:
            vocab_size, hidden_size = shapes["text_model.embeddings.token_embedding.weight"]
            max_positions = shapes["text_model.embeddings.position_embedding.weight"][0]
            intermediate_size = shapes["text_model.encoder.layers.0.mlp.fc1.weight"][0]
        except (KeyError, ValueError, IndexError) as error:
            raise ValueError(f"cannot infer the text encoder's shape: {error} missing or malformed") from error
        layers = {
            int(k.split(".")[3])
            for k in shapes
            if k.startswith("text_model.encoder.layers.") and k.split(".")[3].isdigit()
        }
        if not layers:
            raise ValueError("cannot infer the text encoder's shape: no text_model.encoder.layers.* tensors")
        if hidden_size % HEAD_DIM:
            raise ValueError(
                f"hidden size {hidden_size} is not a multiple of {HEAD_DIM}: give the head count in a config"
            )
        return cls(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=max(layers) + 1,
            num_attention_heads=hidden_size // HEAD_DIM,
            max_position_embeddings=max_positions,
            hidden_act=hidden_act,
        )


class ClipAttention(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        width, self.heads = config.hidden_size, config.num_attention_heads
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = (
            proj(x).view(B, L, self.heads, D // self.heads).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale (D/heads)^-1/2, as CLIP
        return self.out_proj(attended.transpose(1, 2).reshape(B, L, D))


class ClipMlp(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class ClipEncoderLayer(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.self_attn = ClipAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ClipMlp(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEmbeddings(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # Positions are 0..L-1, never read from a checkpoint's position_ids (some merged SD-1 files carry broken ones).
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)


class ClipEncoder(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.layers = nn.ModuleList(ClipEncoderLayer(config) for _ in range(config.num_hidden_layers))


class ClipTextTransformer(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.embeddings = ClipEmbeddings(config)
        self.encoder = ClipEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class ClipTextModel(nn.Module):
    """input_ids [B, L] (L ≤ max_position_embeddings) → last_hidden_state [B, L, hidden_size]."""

    def __init__(self, config: ClipTextConfig | None = None):
        super().__init__()
        self.config = config or ClipTextConfig()
        self.text_model = ClipTextTransformer(self.config)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, tokens], got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"{input_ids.shape[1]} tokens, the text encoder has {self.config.max_position_embeddings} positions"
            )
        low, high = (int(input_ids.min()), int(input_ids.max())) if input_ids.numel() else (0, 0)
        if low < 0 or high >= self.config.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}); got {low}..{high}")
        x = self.text_model.embeddings(input_ids)
        for layer in self.text_model.encoder.layers:
            x = layer(x)
        return self.text_model.final_layer_norm(x)
