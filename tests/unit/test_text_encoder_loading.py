"""Loading the CLIP text encoder: config inference, layouts, and the errors for files that are not SD-1.5's CLIP-L."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from sing_core.text import (
    MODULE_CONFIG_METADATA_KEY,
    ClipTextConfig,
    ClipTextEncoder,
    ClipTextModel,
    ClipTokenizer,
    TextEncoderLoadError,
    VocabularyError,
    WeightsFileError,
    load_text_encoder,
)
from sing_core.text.bpe_vocab import clip_vocabulary_from_merges, write_tokenizer_folder

SMALL = ClipTextConfig(
    vocab_size=600,
    hidden_size=128,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=2,
    max_position_embeddings=12,
)


def small_state(config: ClipTextConfig = SMALL, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.detach().clone() for k, v in ClipTextModel(config).state_dict().items()}


def save(tmp_path, state, name="weights.safetensors", metadata=None):
    path = tmp_path / name
    save_file(state, path, metadata=metadata)
    return path


def test_config_is_inferred_from_shapes_and_the_weights_round_trip(tmp_path):
    state = small_state()
    path = save(tmp_path, state)
    model = load_text_encoder(path, expected_hidden_size=None)
    assert model.config == SMALL  # heads = 128 / 64, quick_gelu by default
    reference = ClipTextModel(SMALL)
    reference.load_state_dict(state)
    ids = torch.randint(0, 600, (2, 12))
    torch.testing.assert_close(model(ids), reference(ids), rtol=0, atol=0)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_defaults_are_sd15_clip_l():
    assert ClipTextConfig() == ClipTextConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 1e-5)


def test_output_depends_only_on_earlier_tokens():
    """The causal mask: changing token 5 leaves positions 0..4 unchanged."""
    model = ClipTextModel(SMALL).eval()
    ids = torch.randint(0, 600, (1, 12))
    changed = ids.clone()
    changed[0, 5] = (ids[0, 5] + 1) % 600
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-4


def test_bad_input_ids_are_refused():
    model = ClipTextModel(SMALL)
    with pytest.raises(ValueError, match="13 tokens"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 600\)"):
        model(torch.full((1, 4), 600))
    with pytest.raises(ValueError, match="batch, tokens"):
        model(torch.zeros(4, dtype=torch.long))


def test_config_from_dict_takes_hf_names_and_refuses_bad_values():
    hf_config = {
        "hidden_size": 64,
        "num_attention_heads": 1,
        "hidden_act": "gelu",
        "projection_dim": 512,
        "architectures": ["CLIPTextModel"],
        "torch_dtype": "float32",
    }
    assert ClipTextConfig.from_dict(hf_config).hidden_act == "gelu"
    assert ClipTextConfig.from_dict({"text_config": hf_config, "vision_config": {}}).hidden_size == 64
    with pytest.raises(ValueError, match="hidden_act 'relu'"):
        ClipTextConfig(hidden_act="relu")
    with pytest.raises(ValueError, match="not divisible"):
        ClipTextConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(ValueError, match="num_hidden_layers must be a positive integer"):
        ClipTextConfig(num_hidden_layers=0)


def test_wrong_width_is_refused_with_the_fix(tmp_path):
    path = save(tmp_path, small_state())
    with pytest.raises(TextEncoderLoadError, match="128 wide, expected 768") as error:
        load_text_encoder(path)
    assert "SD-1.5" in str(error.value)
    assert "clip_l.safetensors" in str(error.value)


def test_1024_wide_hf_text_encoder_is_called_sd2(tmp_path):
    shapes = {
        "text_model.embeddings.token_embedding.weight": (49408, 1024),
        "text_model.embeddings.position_embedding.weight": (77, 1024),
        "text_model.encoder.layers.0.mlp.fc1.weight": (4096, 1024),
    }
    path = save(tmp_path, {k: torch.zeros(s) for k, s in shapes.items()})
    with pytest.raises(TextEncoderLoadError, match=r"1024 wide \(SD-2's OpenCLIP ViT-H\)"):
        load_text_encoder(path)


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", "SD-2.x"),
        ("conditioner.embedders.1.model.token_embedding.weight", "SDXL"),
    ],
)
def test_sd2_and_sdxl_checkpoints_are_refused(key, what, tmp_path):
    state = {key: torch.zeros(4, 4), "model.diffusion_model.out.2.bias": torch.zeros(4)}
    path = save(tmp_path, state)
    with pytest.raises(TextEncoderLoadError, match=what) as error:
        load_text_encoder(path)
    assert "CLIP ViT-L/14" in str(error.value)


def test_checkpoint_without_text_encoder(tmp_path):
    path = save(tmp_path, {"model.diffusion_model.out.2.bias": torch.zeros(4)})
    with pytest.raises(TextEncoderLoadError, match="no CLIP text encoder in it"):
        load_text_encoder(path)


def test_missing_unexpected_and_misshaped_tensors_are_named(tmp_path):
    state = {f"cond_stage_model.transformer.{k}": v for k, v in small_state().items()}
    prefix = "cond_stage_model.transformer.text_model.encoder.layers."
    del state[prefix + "1.mlp.fc2.bias"]
    state[prefix + "0.self_attn.qkv.weight"] = torch.zeros(3, 3)
    state[prefix + "2.layer_norm1.weight"] = torch.ones(127)
    path = save(tmp_path, state)
    with pytest.raises(TextEncoderLoadError) as error:
        load_text_encoder(path, config=SMALL, expected_hidden_size=None)
    message = str(error.value)
    assert str(path) in message
    assert "missing: text_model.encoder.layers.1.mlp.fc2.bias" in message
    assert "unexpected: text_model.encoder.layers.0.self_attn.qkv.weight" in message
    assert "text_model.encoder.layers.2.layer_norm1.weight (127,) != (128,)" in message


def test_extra_layer_beyond_the_given_config_is_unexpected(tmp_path):
    path = save(tmp_path, small_state())
    two_layers = ClipTextConfig(**{**SMALL.to_dict(), "num_hidden_layers": 2})
    with pytest.raises(TextEncoderLoadError, match=r"unexpected: text_model.encoder.layers.2"):
        load_text_encoder(path, config=two_layers, expected_hidden_size=None)


def test_nan_weights_are_refused(tmp_path):
    state = small_state()
    state["text_model.encoder.layers.1.mlp.fc1.weight"][3, 4] = float("nan")
    path = save(tmp_path, state)
    with pytest.raises(TextEncoderLoadError, match=r"NaN or inf values in text_model.encoder.layers.1.mlp.fc1.weight"):
        load_text_encoder(path, expected_hidden_size=None)


def test_fp16_overflow_is_refused(tmp_path):
    state = small_state()
    state["text_model.final_layer_norm.bias"][0] = 1e6
    path = save(tmp_path, state)
    load_text_encoder(path, dtype=torch.bfloat16, expected_hidden_size=None)  # fits bf16's range
    with pytest.raises(TextEncoderLoadError, match=r"overflow torch.float16; load .* in float32 or bfloat16"):
        load_text_encoder(path, dtype=torch.float16, expected_hidden_size=None)


def test_truncated_safetensors_file(tmp_path):
    path = save(tmp_path, small_state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="truncated") as error:
        load_text_encoder(path, expected_hidden_size=None)
    assert str(path) in str(error.value)


def test_module_file_metadata_config_is_used_and_checked(tmp_path):
    state = {f"text_encoder.{k}": v for k, v in small_state().items()}
    state["unet.conv_in.weight"] = torch.zeros(4, 4, 3, 3)
    gelu = ClipTextConfig(**{**SMALL.to_dict(), "hidden_act": "gelu"})
    path = save(tmp_path, state, metadata={MODULE_CONFIG_METADATA_KEY: json.dumps(gelu.to_dict())})
    assert load_text_encoder(path, expected_hidden_size=None).config == gelu
    wide = {**SMALL.to_dict(), "hidden_size": 192, "num_attention_heads": 3}
    path = save(tmp_path, state, "wide.safetensors", metadata={MODULE_CONFIG_METADATA_KEY: json.dumps(wide)})
    with pytest.raises(TextEncoderLoadError, match="wrong shapes"):
        load_text_encoder(path, expected_hidden_size=None)
    path = save(tmp_path, state, "broken.safetensors", metadata={MODULE_CONFIG_METADATA_KEY: "{oops"})
    with pytest.raises(WeightsFileError, match="'text_encoder_config' is not valid JSON"):
        load_text_encoder(path, expected_hidden_size=None)


class NotAWeight:
    pass


def test_pickles_are_read_weights_only(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": NotAWeight()}}, path)
    with pytest.raises(WeightsFileError, match=r"weights_only=True\): .*NotAWeight.*\.safetensors") as error:
        load_text_encoder(path)
    assert "\n" not in str(error.value)
    state = {f"cond_stage_model.transformer.{k}": v for k, v in small_state().items()}
    torch.save({"state_dict": state}, tmp_path / "sd1.ckpt")
    assert load_text_encoder(tmp_path / "sd1.ckpt", expected_hidden_size=None).config == SMALL


def test_unknown_formats_and_missing_paths(tmp_path):
    (tmp_path / "weights.onnx").write_bytes(b"\0")
    with pytest.raises(WeightsFileError, match=r"unknown weights format '.onnx'"):
        load_text_encoder(tmp_path / "weights.onnx")
    with pytest.raises(WeightsFileError, match="no such file"):
        load_text_encoder(tmp_path / "absent.safetensors")
    with pytest.raises(TextEncoderLoadError, match=r"without model.safetensors"):
        load_text_encoder(tmp_path)


def test_encoder_refuses_a_tokenizer_larger_than_the_embedding():
    tokenizer = ClipTokenizer(clip_vocabulary_from_merges([("a", "b")], "tiny"), max_length=12)  # ids up to 514
    ClipTextEncoder(tokenizer, ClipTextModel(SMALL))
    narrow = ClipTextConfig(**{**SMALL.to_dict(), "vocab_size": 514})
    with pytest.raises(ValueError, match="do not belong together"):
        ClipTextEncoder(tokenizer, ClipTextModel(narrow))


def test_encoder_encodes_a_batch_under_inference_mode():
    tokenizer = ClipTokenizer(clip_vocabulary_from_merges([("a", "b")], "tiny"), max_length=12)
    encoder = ClipTextEncoder(tokenizer, ClipTextModel(SMALL).eval())
    out = encoder.encode(["ab ab", ""])
    assert out.shape == (2, 12, 128)
    assert out.is_inference()
    torch.testing.assert_close(out[1], encoder.encode("")[0])


def test_encoder_load_reads_weights_and_a_tokenizer_folder(tmp_path):
    folder = write_tokenizer_folder(clip_vocabulary_from_merges([("a", "b")], "tiny"), tmp_path / "tokenizer")
    short = save(tmp_path, small_state(), "short.safetensors")  # 12 positions: too few for 77 tokens
    with pytest.raises(ValueError, match="pads to 77 tokens, the text model has 12 positions"):
        ClipTextEncoder.load(short, tokenizer=folder, expected_hidden_size=None)
    with pytest.raises(VocabularyError, match="not a tokenizer folder"):
        ClipTextEncoder.load(short, tokenizer=tmp_path / "absent", expected_hidden_size=None)
    config = ClipTextConfig(**{**SMALL.to_dict(), "max_position_embeddings": 77})
    path = save(tmp_path, small_state(config))
    encoder = ClipTextEncoder.load(path, dtype=torch.bfloat16, tokenizer=folder, expected_hidden_size=None)
    assert (encoder.dtype, encoder.device.type, encoder.tokenizer.source) == (torch.bfloat16, "cpu", str(folder))
    out = encoder.encode(["ab", "ba"])
    assert (out.shape, out.dtype) == ((2, 77, 128), torch.bfloat16)
