"""The tiny One More Step release the OMS parity recording was made on, rebuilt without the reference.

Used by both sides: tests/parity/record_oms_reference.py (run in a throwaway environment with the reference's
diffusers 0.23.1 and transformers 4.35) builds the reference's own module and text encoder and fills them with these
weights; tests/parity/test_oms_reference.py rebuilds the same weights here and proves them equal to what the
reference saved by the sha256 stored in the recording. So the recording holds only inputs, outputs and small JSON
(configs as the reference wrote them, weight shapes, hashes), not the weights. torch and the standard library only.

The module has the released "b" layout (block types, depths, 2 layers per block, head width 32, norm_num_groups 32)
at a fifth of its widths; the text encoder is an SD-2-style CLIPTextModel (gelu, "!" padding) 64 wide, which is the
module's cross_attention_dim as 1024 is the release's.
"""

from __future__ import annotations

import hashlib
import json
import zlib

import torch

MODULE_SEED = 16_08  # issue 16, item 8
TEXT_SEED = 16_09
NOISE_SEED = 100  # the reference's demo seed
NUM_INFERENCE_STEPS = 20
HEIGHT = WIDTH = 128  # pixels: 16×16 latents
GUIDANCE_SCALES = (1.0, 2.0)
MODULE_PROMPTS = ["a starry night", "solid black background"]
TEXT_PROMPTS = [*MODULE_PROMPTS, "", "A photo of a CAT, at night!"]

# The "b" release's config (block_out_channels [160, 320, 640], attention_head_dim [5, 10, 20], cross_attention_dim
# 1024) at a fifth of its widths; diffusers' attention_head_dim is the head count, so heads stay 32 wide.
MODULE_CONFIG = {
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 64, 128],
    "layers_per_block": 2,
    "attention_head_dim": [1, 2, 4],
    "cross_attention_dim": 64,
    "norm_num_groups": 32,
    "use_linear_projection": False,
}

# SD-2's text_encoder config (gelu, bos 0 / pad 1 / eos 2 as in stabilityai/stable-diffusion-2-1) made tiny.
TEXT_CONFIG = {
    "vocab_size": 49408,
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,  # heads 64 wide, as in ViT-H (16 × 64): a checkpoint file gives no head count
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 64,
    "bos_token_id": 0,
    "pad_token_id": 1,
    "eos_token_id": 2,
}

# What a Hugging Face OMS release's model_index.json holds (sd_pipeline names the latent family).
MODEL_INDEX = {
    "_class_name": "OMSPipeline",
    "_diffusers_version": "0.23.1",
    "oms_module": ["diffusers_patch", "UNet2DConditionWoCTModel"],
    "oms_text_encoder": ["transformers", "CLIPTextModel"],
    "oms_tokenizer": ["transformers", "CLIPTokenizer"],
    "sd_pipeline": ["stable_diffusion", "StableDiffusionPipeline"],
}
# The release's oms_text_encoder/ holds no weights, only a config whose _name_or_path and subfolder the reference's
# loader follows to SD-2.1's text encoder.
TEXT_POINTER = {"_name_or_path": "stabilityai/stable-diffusion-2-1", "subfolder": "text_encoder"}


def seeded_state(
    shapes: dict[str, list[int]], seed: int, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """Random weights that keep activations near unit scale, each key drawn from its own seed (so neither the order
    nor the set of other keys changes a tensor): matrices and kernels N(0, 1/fan_in), norm weights 1 + N(0, 0.1²),
    biases N(0, 0.1²). Rounded to `dtype` (float16 for the module: the releases ship fp16)."""
    state = {}
    for key, shape in sorted(shapes.items()):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
        values = torch.randn(shape, generator=generator, dtype=torch.float32)
        if len(shape) >= 2:
            fan_in = 1
            for size in shape[1:]:
                fan_in *= size
            values = values / fan_in**0.5
        elif key.endswith("weight"):
            values = 1.0 + 0.1 * values
        else:
            values = 0.1 * values
        state[key] = values.to(dtype)
    return state


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """A hash of the tensors themselves (keys, dtypes, shapes, bytes), independent of the file format around them."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().contiguous().cpu()
        digest.update(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def shapes_of(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {key: list(tensor.shape) for key, tensor in sorted(state.items())}


def vocabulary_sha256(vocabulary) -> str:
    """A hash of a BPE vocabulary's meaning (sing_core.text.bpe_vocab.BpeVocabulary: token → id and the merges),
    whatever the file layout it was read from."""
    text = json.dumps([sorted(vocabulary.token_ids.items()), [list(pair) for pair in vocabulary.merges]])
    return hashlib.sha256(text.encode()).hexdigest()


def read_recording(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The recorded tensors and metadata (JSON fields stay strings; callers parse what they use)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as recording:
        return {key: recording.get_tensor(key) for key in recording.keys()}, dict(recording.metadata())  # noqa: SIM118


def write_release(root, metadata: dict[str, str]):
    """The tiny OMS release folder exactly as the reference saved it: the recorded configs and model index, the module
    weights rebuilt from their seed and written as diffusers 0.23's save_pretrained writes them (metadata format pt).
    """
    from pathlib import Path

    from safetensors.torch import save_file

    root = Path(root)
    files = json.loads(metadata["files"])
    for name in ("model_index.json", "oms_module/config.json", "oms_text_encoder/config.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(files[name])
    state = seeded_state(json.loads(metadata["module_shapes"]), MODULE_SEED, torch.float16)
    save_file(state, str(root / "oms_module" / "diffusion_pytorch_model.fp16.safetensors"), metadata={"format": "pt"})
    return root


def write_sd2_text_folder(root, metadata: dict[str, str], vocabulary):
    """A partial diffusers SD-2 folder (text_encoder/ + tokenizer/) holding the reference run's tiny text encoder:
    its config as transformers 4.35 saved it, the weights rebuilt from their seed, `vocabulary` (a BpeVocabulary of
    CLIP's merges) and the reference tokenizer's recorded configs ("!" padding)."""
    from pathlib import Path

    from safetensors.torch import save_file

    from sing_core.text.bpe_vocab import write_tokenizer_folder

    root = Path(root)
    files = json.loads(metadata["files"])
    for name in ("text_encoder/config.json", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(files[name])
    state = seeded_state(json.loads(metadata["text_shapes"]), TEXT_SEED)
    save_file(state, str(root / "text_encoder" / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer_folder(vocabulary, root / "tokenizer")
    return root
