"""open_text_encoder: which file each text kind takes, where its tokenizer comes from, and the errors that name what
to choose instead. (Parity with transformers: tests/parity/test_openclip_text_parity.py.)"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import sing_core.text.tokenizer as tokenizer_module
from sing_core.kinds import ModuleKindError
from sing_core.text import (
    ClipTextConfig,
    ClipTextModel,
    ClipTokenizer,
    TextEncoderLoadError,
    find_text_encoder,
    open_text_encoder,
    text_encoder_width,
)
from sing_core.text.bpe_vocab import clip_vocabulary_from_merges, write_tokenizer_folder
from sing_core.text.pretokenize import OPEN_CLIP

WIDTH, VOCAB, MLP = 64, 600, 32
TINY_MERGES = [("a", "b"), ("c", "d"), ("ab", "cd</w>")]
SD2_ADVICE = ("v2-1_768-ema-pruned.safetensors", "text_encoder/ folder of stable-diffusion-2-1")


def hf_state(layers: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    config = ClipTextConfig(VOCAB, WIDTH, MLP, layers, WIDTH // 64, 77, "gelu")
    torch.manual_seed(seed)
    return {f"text_model.{k}": v.detach().clone() for k, v in ClipTextModel(config).text_model.state_dict().items()}


def open_clip_state(blocks: int = 3, prefix: str = "cond_stage_model.model.", seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(shape, generator=generator)

    state = {"token_embedding.weight": rand(VOCAB, WIDTH), "positional_embedding": rand(77, WIDTH)}
    state |= {"ln_final.weight": rand(WIDTH), "ln_final.bias": rand(WIDTH), "text_projection": rand(WIDTH, WIDTH)}
    for i in range(blocks):
        block = f"transformer.resblocks.{i}."
        state |= {block + "attn.in_proj_weight": rand(3 * WIDTH, WIDTH), block + "attn.in_proj_bias": rand(3 * WIDTH)}
        for name, shape in (("ln_1", (WIDTH,)), ("ln_2", (WIDTH,))):
            state |= {block + f"{name}.weight": rand(*shape), block + f"{name}.bias": rand(*shape)}
        for name, (out, into) in (
            ("attn.out_proj", (WIDTH, WIDTH)),
            ("mlp.c_fc", (MLP, WIDTH)),
            ("mlp.c_proj", (WIDTH, MLP)),
        ):
            state |= {block + f"{name}.weight": rand(out, into), block + f"{name}.bias": rand(out)}
    return {prefix + k: v for k, v in state.items()}


def save(tmp_path, state, name="weights.safetensors"):
    path = tmp_path / name
    save_file(state, path)
    return path


def tiny_tokenizer_folder(path, merges=TINY_MERGES):
    return write_tokenizer_folder(clip_vocabulary_from_merges(list(merges), str(path)), path)


def test_sdxl_text_has_no_file_and_says_it_is_the_hosts():
    with pytest.raises(TextEncoderLoadError, match="SDXL checkpoint's own conditioning") as error:
        open_text_encoder("sdxl", "anything.safetensors")
    assert '"host" text source' in str(error.value)


def test_unknown_text_kind_names_the_choices():
    with pytest.raises(ModuleKindError, match=r"'t5'.*clip_l, openclip_h, sdxl"):
        open_text_encoder("t5", "anything.safetensors")


@pytest.mark.parametrize("path", [None, "", "missing/v2-1_768-ema-pruned.safetensors"])
def test_missing_openclip_file_names_what_to_download(path):
    with pytest.raises(TextEncoderLoadError) as error:
        open_text_encoder("openclip_h", path)
    for advice in SD2_ADVICE:
        assert advice in str(error.value)


def test_missing_clip_l_file_names_sd15():
    with pytest.raises(TextEncoderLoadError, match="no such file") as error:
        open_text_encoder("clip_l", "missing.safetensors")
    assert "v1-5-pruned-emaonly.safetensors" in str(error.value)


def test_a_folder_without_weights_is_refused_with_the_fix(tmp_path):
    """One More Step's oms_text_encoder/ holds only a config pointing at SD-2.1: not the encoder itself."""
    folder = tmp_path / "oms_text_encoder"
    folder.mkdir()
    (folder / "config.json").write_text('{"_name_or_path": "stabilityai/stable-diffusion-2-1"}')
    with pytest.raises(TextEncoderLoadError, match=r"a folder without model\.safetensors") as error:
        open_text_encoder("openclip_h", folder)
    assert SD2_ADVICE[0] in str(error.value)


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", "SD-1.x checkpoint"),
        ("conditioner.embedders.1.model.token_embedding.weight", "SDXL checkpoint"),
        ("text_encoders.clip_g.transformer.text_model.embeddings.token_embedding.weight", "SD3-style"),
    ],
)
def test_other_models_are_refused_for_openclip_with_the_file_to_choose(key, what, tmp_path):
    path = save(tmp_path, {key: torch.zeros(4, 4), "model.diffusion_model.out.2.bias": torch.zeros(4)})
    with pytest.raises(TextEncoderLoadError, match=what) as error:
        open_text_encoder("openclip_h", path)
    assert "not SD-2's OpenCLIP ViT-H" in str(error.value)
    assert SD2_ADVICE[0] in str(error.value)


@pytest.mark.parametrize("prefix", ["cond_stage_model.model.", ""])
def test_open_clip_layouts_are_refused_for_clip_l(prefix, tmp_path):
    path = save(tmp_path, open_clip_state(prefix=prefix))
    with pytest.raises(TextEncoderLoadError, match="SD-2") as error:
        open_text_encoder("clip_l", path)
    assert "v1-5-pruned-emaonly.safetensors" in str(error.value)


def test_open_clip_checkpoint_drops_its_last_block_and_splits_in_proj(tmp_path):
    state = open_clip_state(blocks=3)
    path = save(tmp_path, state)
    encoder = open_text_encoder("openclip_h", path, tokenizer=tiny_tokenizer_folder(tmp_path / "tok"))
    model = encoder.model
    assert model.config == ClipTextConfig(VOCAB, WIDTH, MLP, 2, 1, 77, "gelu")
    in_proj = state["cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"]
    attention = model.text_model.encoder.layers[1].self_attn
    for part, projection in enumerate((attention.q_proj, attention.k_proj, attention.v_proj)):
        torch.testing.assert_close(projection.weight, in_proj[part * WIDTH : (part + 1) * WIDTH], rtol=0, atol=0)
    assert encoder.hidden_size == WIDTH
    assert encoder.encode(["ab cd", "!"]).shape == (2, 77, WIDTH)


def test_an_open_clip_file_of_one_block_is_refused(tmp_path):
    path = save(tmp_path, open_clip_state(blocks=1))
    with pytest.raises(TextEncoderLoadError, match="1 block"):
        open_text_encoder("openclip_h", path)


def test_a_misshaped_in_proj_is_named(tmp_path):
    state = open_clip_state(blocks=3)
    state["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] = torch.zeros(3 * WIDTH + 1, WIDTH)
    path = save(tmp_path, state)
    with pytest.raises(TextEncoderLoadError, match=r"wrong shapes: .*layers\.0\.self_attn\.k_proj\.weight"):
        open_text_encoder("openclip_h", path)


def test_widths_are_not_hard_coded_but_can_be_checked(tmp_path):
    path = save(tmp_path, hf_state())
    folder = tiny_tokenizer_folder(tmp_path / "tok")
    assert open_text_encoder("openclip_h", path, tokenizer=folder).hidden_size == WIDTH
    with pytest.raises(TextEncoderLoadError, match="64 wide, expected 1024"):
        open_text_encoder("openclip_h", path, tokenizer=folder, expected_hidden_size=1024)
    with pytest.raises(TextEncoderLoadError, match="64 wide, expected 768"):  # clip_l: 768 unless told otherwise
        open_text_encoder("clip_l", path, tokenizer=folder)
    assert open_text_encoder("clip_l", path, tokenizer=folder, expected_hidden_size=WIDTH).hidden_size == WIDTH


def test_openclip_tokenizer_beside_the_encoder_comes_first_then_the_given_one(tmp_path):
    """A partial SD-2 folder (text_encoder/ + tokenizer/) uses its own tokenizer/, given whole, as text_encoder/ or
    as the weights file in it; elsewhere the given folder (One More Step's oms_tokenizer/) is used. "!" pads."""
    sd2 = tmp_path / "sd2"
    (sd2 / "text_encoder").mkdir(parents=True)
    save(sd2 / "text_encoder", hf_state(), "model.safetensors")
    beside = tiny_tokenizer_folder(sd2 / "tokenizer")
    oms_tokenizer = tiny_tokenizer_folder(tmp_path / "oms_tokenizer", TINY_MERGES[:2])
    for path in (sd2, sd2 / "text_encoder", sd2 / "text_encoder" / "model.safetensors"):
        encoder = open_text_encoder("openclip_h", path, tokenizer=oms_tokenizer)
        assert encoder.tokenizer.source == str(beside)
        assert encoder.tokenizer.pad_id == 0
    elsewhere = save(tmp_path, hf_state(), "sd2_text.safetensors")
    encoder = open_text_encoder("openclip_h", elsewhere, tokenizer=oms_tokenizer)
    assert encoder.tokenizer.source == str(oms_tokenizer)
    ids, ab = encoder.tokenizer(["ab"])[0].tolist(), list(encoder.tokenizer.word_ids("ab"))
    assert ids == [encoder.tokenizer.bos_id, *ab, encoder.tokenizer.eos_id] + [0] * (77 - 2 - len(ab))


def test_openclip_tokenizer_is_found_with_exclamation_padding(tmp_path, monkeypatch):
    """No tokenizer beside and none given: a CLIP vocabulary found on the machine (here One More Step's
    oms_tokenizer/ in the hub cache), padded with "!"."""
    hub = tmp_path / "hub"
    found = tiny_tokenizer_folder(hub / "models--h1t--oms_b_openclip_15_21" / "snapshots" / "abc" / "oms_tokenizer")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(tokenizer_module, "package_bpe_gz_files", list)
    encoder = open_text_encoder("openclip_h", save(tmp_path, hf_state()))
    assert encoder.tokenizer.source == str(found)
    assert encoder.tokenizer.pad_token == "!"


def test_a_tokenizer_object_must_pad_as_the_kind_does(tmp_path):
    path = save(tmp_path, hf_state())
    vocabulary = clip_vocabulary_from_merges(TINY_MERGES, "tiny")
    with pytest.raises(ValueError, match=r"pads with '<\|endoftext\|>'; openclip_h text is padded with '!'"):
        open_text_encoder("openclip_h", path, tokenizer=ClipTokenizer(vocabulary))
    with pytest.raises(ValueError, match=r"clip_l text is padded with '<\|endoftext\|>'"):
        open_text_encoder("clip_l", path, tokenizer=ClipTokenizer(vocabulary, pad_token="!"), expected_hidden_size=64)
    given = ClipTokenizer(vocabulary, pad_token="!")
    assert open_text_encoder("openclip_h", path, tokenizer=given).tokenizer is given


def test_exclamation_is_cut_out_as_the_pad_token():
    """With "!" padding, a "!" in the prompt is id 0 (transformers registers the pad token as a special token);
    CLIP-L's tokenizer keeps it as BPE ("!</w>" = 256)."""
    vocabulary = clip_vocabulary_from_merges(TINY_MERGES, "tiny")
    sd2, clip_l = ClipTokenizer(vocabulary, pad_token="!"), ClipTokenizer(vocabulary)
    ab, cd = list(sd2.word_ids("ab")), list(sd2.word_ids("cd"))
    assert sd2.tokenize("ab!cd") == [*ab, 0, *cd]
    assert clip_l.tokenize("ab!cd") == [*ab, vocabulary.token_ids["!</w>"], *cd]
    assert sd2.encode("")[:3] == [sd2.bos_id, sd2.eos_id, 0]
    assert clip_l.encode("")[:3] == [sd2.bos_id, sd2.eos_id, sd2.eos_id]
    with pytest.raises(ValueError, match="pad_token='¿¿' is not in the vocabulary"):
        ClipTokenizer(vocabulary, pad_token="¿¿")


def test_open_clip_pipeline_is_a1111s_sd2_tokenizer():
    """open_clip's SimpleTokenizer (A1111's for SD-2): "!" stays text, its specials are spelled <start_of_text> /
    <end_of_text> and found after cleaning, "<|endoftext|>" is text, HTML entities are unescaped twice; padding 0.
    (tests/live/test_sd2_tokenizer.py compares with open-clip-torch itself.)"""
    vocabulary = clip_vocabulary_from_merges(TINY_MERGES, "tiny")
    tokenizer = ClipTokenizer(vocabulary, pipeline=OPEN_CLIP, pad_token="!")
    ids = vocabulary.token_ids
    ab = list(tokenizer.word_ids("ab"))
    assert tokenizer.tokenize("ab!") == [*ab, ids["!</w>"]]
    assert tokenizer.tokenize("<START_of_text>ab<end_of_text>") == [tokenizer.bos_id, *ab, tokenizer.eos_id]
    assert tokenizer.eos_id not in tokenizer.tokenize("<|endoftext|>")
    assert tokenizer.tokenize("&amp;amp;") == [ids["&</w>"]]
    assert tokenizer.encode("ab")[: len(ab) + 3] == [tokenizer.bos_id, *ab, tokenizer.eos_id, 0]


def test_automatic_finds_the_first_file_holding_the_kinds_encoder_of_the_modules_width(tmp_path):
    """What a host's "Automatic" runs over the user's checkpoints: headers only, other models passed over."""
    sd1 = save(tmp_path, {f"cond_stage_model.transformer.{k}": v for k, v in hf_state().items()}, "sd15.safetensors")
    sdxl = save(tmp_path, {"conditioner.embedders.1.model.token_embedding.weight": torch.zeros(4, 4)}, "xl.safetensors")
    sd2 = save(tmp_path, open_clip_state(blocks=3), "v2-1.safetensors")
    sd2_ckpt = tmp_path / "v2-1.ckpt"
    torch.save({"state_dict": open_clip_state(blocks=3)}, sd2_ckpt)
    folder = tmp_path / "sd2-diffusers"
    (folder / "text_encoder").mkdir(parents=True)
    save(folder / "text_encoder", hf_state(), "model.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    others = [broken, tmp_path / "absent.safetensors", sd1, sdxl]
    assert [text_encoder_width("openclip_h", p) for p in [*others, sd2, sd2_ckpt, folder]] == [None] * 4 + [64] * 3
    assert find_text_encoder("openclip_h", [*others, sd2, sd2_ckpt], width=WIDTH) == sd2
    assert find_text_encoder("openclip_h", [*others, folder], width=WIDTH) == folder
    assert find_text_encoder("openclip_h", [*others, sd2], width=1024) is None
    assert find_text_encoder("clip_l", [sd2, sdxl, sd1], width=WIDTH) == sd1
