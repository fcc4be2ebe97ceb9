"""Tiny module configs and release folders for the unit tests (no diffusers needed)."""

import contextlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from sing_core import SingModule, UNetConfig

# SD-1 style: conv proj_in, one head count for every block.
TINY = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "attention_head_dim": 4,
    "cross_attention_dim": 24,
    "norm_num_groups": 8,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
# SD-2 style: linear projections, heads per block, fp32 attention.
TINY_SD2 = {
    **TINY,
    "attention_head_dim": [2, 4, 4],
    "use_linear_projection": True,
    "upcast_attention": True,
    "layers_per_block": 2,
    "transformer_layers_per_block": 2,
}


def tiny_module(config: dict = TINY, seed: int = 0) -> SingModule:
    torch.manual_seed(seed)
    return SingModule(UNetConfig.from_dict(config)).eval()


def time_keys(config: dict) -> dict[str, torch.Tensor]:
    """What a diffusers UNet's state dict has beyond SingUNet's (shapes need not be exact: they are ignored)."""
    width = config["block_out_channels"][0]
    extra = {
        "time_embedding.linear_1.weight": torch.randn(4 * width, width),
        "time_embedding.linear_1.bias": torch.randn(4 * width),
        "time_embedding.linear_2.weight": torch.randn(4 * width, 4 * width),
        "time_embedding.linear_2.bias": torch.randn(4 * width),
    }
    extra["down_blocks.0.resnets.0.time_emb_proj.weight"] = torch.randn(width, 4 * width)
    extra["down_blocks.0.resnets.0.time_emb_proj.bias"] = torch.randn(width)
    return extra


def write_release(
    folder: Path, config: dict, state: dict[str, torch.Tensor], weights: str = "bin", with_time_keys: bool = True
) -> Path:
    """A folder laid out as the reference release: config.json + diffusion_pytorch_model.bin (or .safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", **config}))
    state = {**state, **(time_keys(config) if with_time_keys else {})}
    if weights == "bin":
        torch.save(state, folder / "diffusion_pytorch_model.bin")
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder


def unet_state(module: SingModule) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.unet.state_dict().items()}


@contextlib.contextmanager
def torch_threads(n: int):
    """Tiny models gain nothing from a second thread, which on a busy machine only waits at every op's barrier."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# One More Step's "b" layout (diffusers 0.23 config keys, no time keys in the weights), reduced in width.
TINY_OMS = {
    "_diffusers_version": "0.23.1",
    "_name_or_path": "h1t/oms_b_openclip_xl",
    "subfolder": "oms_module",
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [16, 32, 64],
    "layers_per_block": 2,
    "attention_head_dim": [1, 2, 4],
    "num_attention_heads": None,
    "cross_attention_dim": 40,
    "norm_num_groups": 8,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "use_linear_projection": False,
    "addition_embed_type": None,
    "addition_embed_type_num_heads": 64,
    "class_embed_type": None,
    "encoder_hid_dim": None,
    "time_embedding_type": "positional",
    "transformer_layers_per_block": 1,
}
OMS_PIPELINES = {"sd": ["stable_diffusion", "StableDiffusionPipeline"],
                 "sdxl": ["stable_diffusion_xl", "StableDiffusionXLPipeline"]}
OPENCLIP_H_POINTER = {"_name_or_path": "stabilityai/stable-diffusion-2-1", "subfolder": "text_encoder",
                      "architectures": ["CLIPTextModel"], "hidden_act": "gelu", "hidden_size": 40}


def write_oms_release(root: Path, state: dict[str, torch.Tensor], family: str = "sdxl", config: dict = TINY_OMS,
                      text_config: dict | None = None, sd_pipeline: list | None = None) -> Path:
    """A folder laid out as One More Step's Hugging Face releases (fp16 safetensors in oms_module/)."""
    (root / "oms_module").mkdir(parents=True, exist_ok=True)
    (root / "oms_text_encoder").mkdir(exist_ok=True)
    index = {"_class_name": "OMSPipeline", "_diffusers_version": "0.23.1",
             "oms_module": ["diffusers_patch", "OMSModel"], "oms_text_encoder": ["transformers", "CLIPTextModel"],
             "oms_tokenizer": ["transformers", "CLIPTokenizer"],
             "sd_pipeline": sd_pipeline if sd_pipeline is not None else OMS_PIPELINES[family]}
    (root / "model_index.json").write_text(json.dumps(index))
    (root / "oms_module" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionWoCTModel", **config}))
    (root / "oms_text_encoder" / "config.json").write_text(json.dumps(text_config or OPENCLIP_H_POINTER))
    save_file({k: v.half().contiguous() for k, v in state.items()},
              str(root / "oms_module" / "diffusion_pytorch_model.fp16.safetensors"))
    return root
