"""Our CLIP text model against transformers' CLIPTextModel on tiny random towers, loaded from every file layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from sing_core.text import (
    MODULE_CONFIG_METADATA_KEY,
    ClipTextConfig,
    ClipTextEncoder,
    ClipTokenizer,
    load_text_encoder,
)
from sing_core.text.bpe_vocab import write_tokenizer_folder
from sing_core.text.vocab_sources import package_bpe_gz_files

TINY = {
    "vocab_size": 49408,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
}


def tiny_hf_model(hidden_act: str, seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    model = CLIPTextModel(CLIPTextConfig(**TINY, hidden_act=hidden_act)).eval()
    with torch.no_grad():  # layer norms start as (1, 0): move them so a swapped or skipped norm shows
        for name, parameter in model.named_parameters():
            if "layer_norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def hf_state(model) -> dict[str, torch.Tensor]:
    """The key layout of the distributed files (transformers 4): transformers 5 saves them without "text_model."."""
    return {f"text_model.{k}": v.contiguous() for k, v in model.state_dict().items()}


def random_ids(batch: int = 3, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 49406, (batch, 77), generator=generator)
    ids[:, 0] = 49406
    ids[:, 20:] = 49407  # EOS then EOS padding, as the tokenizer gives
    return ids


def hf_last_hidden_state(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).last_hidden_state


@pytest.mark.parametrize("hidden_act", ["quick_gelu", "gelu"])
def test_clip_l_style_file_matches_transformers(hidden_act, tmp_path):
    hf = tiny_hf_model(hidden_act)
    state = hf_state(hf)
    state["text_projection.weight"] = torch.randn(16, 32)  # CLIPTextModelWithProjection / ComfyUI's clip_l
    state["text_model.embeddings.position_ids"] = torch.arange(77)[None].float() + 0.4  # a "broken" one: ignored
    path = tmp_path / "clip_l.safetensors"
    save_file(state, path)
    config = ClipTextConfig(**TINY, hidden_act=hidden_act)
    ours = load_text_encoder(path, config=config, expected_hidden_size=None)
    ids = random_ids()
    torch.testing.assert_close(ours(ids), hf_last_hidden_state(hf, ids), rtol=0, atol=1e-5)


def test_the_activation_matters(tmp_path):
    """quick_gelu and gelu towers with the same weights differ, so the test above does tell them apart."""
    hf = tiny_hf_model("quick_gelu")
    path = tmp_path / "clip_l.safetensors"
    save_file(hf_state(hf), path)
    gelu = load_text_encoder(path, config=ClipTextConfig(**TINY, hidden_act="gelu"), expected_hidden_size=None)
    ids = random_ids()
    assert (gelu(ids) - hf_last_hidden_state(hf, ids)).abs().max() > 1e-3


def test_sd1_checkpoint_with_unet_and_vae_keys_matches_transformers(tmp_path):
    hf = tiny_hf_model("quick_gelu", seed=3)
    state = {f"cond_stage_model.transformer.{k}": v for k, v in hf_state(hf).items()}
    state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(8, 4, 3, 3)
    state["first_stage_model.decoder.conv_in.weight"] = torch.randn(8, 4, 3, 3)
    state["alphas_cumprod"] = torch.rand(1000)
    path = tmp_path / "sd15.safetensors"
    save_file(state, path)
    ours = load_text_encoder(path, config=ClipTextConfig(**TINY), expected_hidden_size=None)
    ids = random_ids(seed=4)
    torch.testing.assert_close(ours(ids), hf_last_hidden_state(hf, ids), rtol=0, atol=1e-5)


def test_legacy_sd1_ckpt_without_text_model_level_is_read_weights_only(tmp_path):
    hf = tiny_hf_model("quick_gelu", seed=5)
    legacy = {f"cond_stage_model.transformer.{k}": v for k, v in hf.state_dict().items()}  # no "text_model."
    legacy["model.diffusion_model.out.2.bias"] = torch.zeros(4)
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": legacy, "global_step": 470000}, path)
    ours = load_text_encoder(path, config=ClipTextConfig(**TINY), expected_hidden_size=None)
    ids = random_ids(seed=6)
    torch.testing.assert_close(ours(ids), hf_last_hidden_state(hf, ids), rtol=0, atol=1e-5)


@pytest.mark.parametrize("hidden_act", ["quick_gelu", "gelu"])
def test_module_file_with_text_encoder_prefix_and_config_metadata(hidden_act, tmp_path):
    hf = tiny_hf_model(hidden_act, seed=7)
    state = {f"text_encoder.{k}": v for k, v in hf_state(hf).items()}
    state["unet.conv_in.weight"] = torch.randn(8, 4, 3, 3)
    path = tmp_path / "singdiffusion.safetensors"
    metadata = {MODULE_CONFIG_METADATA_KEY: json.dumps(hf.config.to_dict())}  # a full HF config.json
    save_file(state, path, metadata=metadata)
    ours = load_text_encoder(path, expected_hidden_size=None)  # everything from the file
    assert ours.config == ClipTextConfig(**TINY, hidden_act=hidden_act)
    ids = random_ids(seed=8)
    torch.testing.assert_close(ours(ids), hf_last_hidden_state(hf, ids), rtol=0, atol=1e-5)


def test_diffusers_text_encoder_folder_uses_its_config_json(tmp_path):
    """A text_encoder/ folder as transformers 5 saves it: bare keys (no "text_model.") and a config.json."""
    hf = tiny_hf_model("gelu", seed=9)
    hf.save_pretrained(tmp_path / "text_encoder")
    ours = load_text_encoder(tmp_path, expected_hidden_size=None)
    assert ours.config.hidden_act == "gelu"
    ids = random_ids(seed=10)
    torch.testing.assert_close(ours(ids), hf_last_hidden_state(hf, ids), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_stays_close_to_float32(dtype, tmp_path):
    hf = tiny_hf_model("quick_gelu", seed=11)
    path = tmp_path / "clip_l.safetensors"
    save_file(hf_state(hf), path)
    ours = load_text_encoder(path, dtype=dtype, config=ClipTextConfig(**TINY), expected_hidden_size=None)
    ids = random_ids(seed=12)
    out = ours(ids)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), hf_last_hidden_state(hf, ids), rtol=0, atol=0.1)


def test_encoder_equals_transformers_tokenizer_plus_model(tmp_path):
    """ClipTextEncoder.encode == CLIPTextModel(CLIPTokenizer(prompts, max_length padding))[0], as in diffusers."""
    gz = package_bpe_gz_files(("clip",))
    if not gz:
        pytest.fail("needs OpenAI's bpe_simple_vocab_16e6.txt.gz: pip install openai-clip==1.0.1")
    from transformers import CLIPTokenizer

    tokenizer = ClipTokenizer.from_bpe_gz(gz[0])
    write_tokenizer_folder(tokenizer.vocabulary, tmp_path / "tok")
    hf_tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "tok", model_max_length=77, pad_token="<|endoftext|>")
    hf = tiny_hf_model("quick_gelu", seed=13)
    save_file(hf_state(hf), tmp_path / "clip_l.safetensors")
    model = load_text_encoder(tmp_path / "clip_l.safetensors", config=ClipTextConfig(**TINY), expected_hidden_size=None)
    encoder = ClipTextEncoder(tokenizer, model)
    prompts = ["solid black background", "", "(masterpiece:1.2), a cat " * 20]
    ids = hf_tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    expected = hf_last_hidden_state(hf, ids)
    actual = encoder.encode(prompts)
    assert actual.shape == (3, 77, 32)
    assert actual.is_inference()
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
