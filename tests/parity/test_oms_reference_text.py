"""The module's text against One More Step's, through the recording of tests/parity/test_oms_reference.py.

The reference encodes a prompt with oms_text_encode: SD-2's tokenizer (CLIPTokenizer, "!" padding to 77 tokens) and
SD-2's text_encoder (transformers 4.35's CLIPTextModel, last_hidden_state: OpenCLIP ViT-H's penultimate block then its
final norm). The recording holds what that gave for a few prompts and "" on a tiny SD-2-style encoder; here
sing_core.text.open_text_encoder("openclip_h", ...) must give the same embeddings within 1e-4 from every place a user
has that encoder: a diffusers SD-2 folder (only text_encoder/ and tokenizer/), its text_encoder/ folder, and an
SD-2.x checkpoint file, whose open_clip layout (cond_stage_model.model.*, one more resblock that SD-2 skips) is
written here from the same weights. Then the whole path, prompt → our embeddings → our module → x̂0, gives the
reference's x̂0.

One detail of the reference's tokenizer shows in the last prompt: transformers 4.35 makes the pad token "!" a special
token, so a "!" typed in a prompt is read as id 0 (the padding), not as the word "!</w>" (256) that open_clip's own
tokenizer gives. The module was made with the reference's tokenizer, and that is what is matched here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from oms_tiny_release import (
    TEXT_PROMPTS,
    TEXT_SEED,
    read_recording,
    seeded_state,
    vocabulary_sha256,
    write_release,
    write_sd2_text_folder,
)
from safetensors.torch import save_file

from sing_core import load_module
from sing_core.text import open_text_encoder
from sing_core.text.bpe_vocab import read_bpe_gz
from sing_core.text.vocab_sources import package_bpe_gz_files

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "data" / "oms_reference.safetensors"
TOLERANCE = 1e-4
CHECKPOINT_PREFIX = "cond_stage_model.model."


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks: one thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def recording():
    return read_recording(RECORDING)


@pytest.fixture(scope="module")
def vocabulary(recording):
    gz_files = package_bpe_gz_files()
    assert gz_files, "no bpe_simple_vocab_16e6.txt.gz: install requirements/test.txt (openai-clip)"
    vocabulary = read_bpe_gz(gz_files[0])
    assert vocabulary_sha256(vocabulary) == recording[1]["vocabulary_sha256"], "not the reference run's vocabulary"
    return vocabulary


@pytest.fixture(scope="module")
def sd2_folder(tmp_path_factory, recording, vocabulary):
    return write_sd2_text_folder(tmp_path_factory.mktemp("sd2") / "sd2_tiny", recording[1], vocabulary)


@pytest.fixture(scope="module")
def text_encoder_folder(sd2_folder):
    """The text_encoder/ folder alone: its tokenizer is the tokenizer/ beside it."""
    return sd2_folder / "text_encoder"


def open_clip_checkpoint_state(hf_state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """An SD-2.x checkpoint's text keys (open_clip layout) holding the same encoder as transformers' text_encoder/.

    SD-2 reads the penultimate resblock's output through ln_final, and diffusers' SD-2 text_encoder is that encoder
    with the last block dropped; so the checkpoint gets one more, random, block, which must not change the result.
    """
    hf = {key.removeprefix("text_model."): tensor for key, tensor in hf_state.items()}
    layers = 1 + max(int(key.split(".")[2]) for key in hf if key.startswith("encoder.layers."))
    width = hf["embeddings.token_embedding.weight"].shape[1]
    state = {
        "token_embedding.weight": hf["embeddings.token_embedding.weight"],
        "positional_embedding": hf["embeddings.position_embedding.weight"],
        "ln_final.weight": hf["final_layer_norm.weight"],
        "ln_final.bias": hf["final_layer_norm.bias"],
    }
    names = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
             "self_attn.out_proj": "attn.out_proj"}
    for i in range(layers):
        source, target = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            state[f"{target}attn.in_proj_{part}"] = torch.cat(
                [hf[f"{source}self_attn.{p}_proj.{part}"] for p in ("q", "k", "v")]
            )
            for hf_name, clip_name in names.items():
                state[f"{target}{clip_name}.{part}"] = hf[f"{source}{hf_name}.{part}"]
    skipped = {key.replace(".resblocks.0.", f".resblocks.{layers}."): list(tensor.shape)
               for key, tensor in state.items() if key.startswith("transformer.resblocks.0.")}
    extras = {**skipped, "text_projection": [width, width], "logit_scale": []}
    state.update(seeded_state(extras, seed))
    return {CHECKPOINT_PREFIX + key: tensor.contiguous() for key, tensor in state.items()}


@pytest.fixture(scope="module")
def sd2_checkpoint(tmp_path_factory, recording):
    state = open_clip_checkpoint_state(seeded_state(json.loads(recording[1]["text_shapes"]), TEXT_SEED), TEXT_SEED + 1)
    # The rest of a checkpoint (UNet, VAE) is not the encoder's business; one key stands for it.
    state["model.diffusion_model.out.2.bias"] = torch.zeros(4)
    path = tmp_path_factory.mktemp("sd2ckpt") / "v2-1_tiny.safetensors"
    save_file(state, str(path))
    return path


def test_rebuilt_text_encoder_is_the_one_the_reference_saved(sd2_folder, recording):
    weights = sd2_folder / "text_encoder" / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == recording[1]["text_file_sha256"]


@pytest.mark.parametrize("source", ["sd2_folder", "text_encoder_folder", "sd2_checkpoint"])
def test_openclip_h_embeddings_equal_the_reference(request, recording, source):
    encoder = open_text_encoder("openclip_h", request.getfixturevalue(source))
    assert encoder.hidden_size == 64
    embeddings = encoder.encode(TEXT_PROMPTS)
    reference = recording[0]["text.embeddings"]
    assert embeddings.shape == reference.shape
    for prompt, ours, theirs in zip(TEXT_PROMPTS, embeddings.float(), reference, strict=True):
        difference = (ours - theirs).abs().max().item()
        assert difference < TOLERANCE, f"{source}, {prompt!r}: max |embeddings − reference| = {difference:.2e}"


def test_prompt_to_x0_equals_the_reference(tmp_path, sd2_folder, recording):
    """Our encoder's prompt and "" embeddings through our module: the reference's x̂0 at w = 2."""
    tensors, metadata = recording
    module = load_module(write_release(tmp_path / "oms_b_tiny", metadata))
    prompts = json.loads(metadata["module_prompts"])
    encoder = open_text_encoder("openclip_h", sd2_folder)
    cond, uncond = encoder.encode(prompts), encoder.encode([""] * len(prompts))
    x0_hat = module.predict_x0(tensors["w2.x_T"], cond, uncond, 2.0).double()
    v_uncond, v_cond = tensors["w2.v"].double().chunk(2)
    assert (x0_hat + v_uncond + 2.0 * (v_cond - v_uncond)).abs().max().item() < TOLERANCE
