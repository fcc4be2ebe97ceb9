"""SD-2's OpenCLIP ViT-H text conditioning: our encoder against transformers' CLIPTextModel (what diffusers' SD-2
text_encoder/ is, and what One More Step's module reads) on a tiny random SD-2-style tower, from each file layout;
and the "!"-padded ids against transformers' CLIPTokenizer with pad_token "!".

The open_clip layout (what SD-2 checkpoints hold) is checked against a reference built the way open_clip builds its
text tower (torch's nn.MultiheadAttention with q, k, v stacked in in_proj_weight; ln_1/attn/ln_2/mlp.c_fc/c_proj;
ldm's FrozenOpenCLIPEmbedder with layer="penultimate" runs every block but the last, then ln_final), so the layout
conversion written by this test is itself checked against torch's attention, not only against our loader.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file
from text_prompts import PROMPTS
from torch import nn

from sing_core.text import ClipTokenizer, open_text_encoder
from sing_core.text.bpe_vocab import write_tokenizer_folder
from sing_core.text.pretokenize import TRANSFORMERS5
from sing_core.text.vocab_sources import package_bpe_gz_files

# SD-2's text_encoder/config.json, shrunk: gelu, 64-wide heads, 77 positions, CLIP's vocabulary.
TINY_SD2 = {
    "vocab_size": 49408,
    "hidden_size": 128,
    "intermediate_size": 96,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}


def tiny_sd2_text_encoder(seed: int = 0, **changes):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    model = CLIPTextModel(CLIPTextConfig(**{**TINY_SD2, **changes})).eval()
    with torch.no_grad():  # layer norms start as (1, 0): move them so a swapped or skipped norm shows
        for name, parameter in model.named_parameters():
            if "layer_norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def last_hidden_state(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).last_hidden_state


def random_ids(batch: int = 3, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 49406, (batch, 77), generator=generator)
    ids[:, 0] = 49406
    ids[:, 15] = 49407
    ids[:, 16:] = 0  # "!" padding, as SD-2's tokenizer gives
    return ids


def open_clip_state(hf_model, extra_block_seed: int = 99) -> dict[str, torch.Tensor]:
    """The HF weights in open_clip's text-tower names, with one more (random) block at the end, as an SD-2
    checkpoint keeps all 24 blocks of ViT-H where diffusers' text_encoder keeps 23."""
    hf = {k.removeprefix("text_model."): v for k, v in hf_model.state_dict().items()}
    layers = hf_model.config.num_hidden_layers
    state = {
        "token_embedding.weight": hf["embeddings.token_embedding.weight"],
        "positional_embedding": hf["embeddings.position_embedding.weight"],
        "ln_final.weight": hf["final_layer_norm.weight"],
        "ln_final.bias": hf["final_layer_norm.bias"],
        "text_projection": torch.randn(hf_model.config.hidden_size, 32),  # open_clip's; SD-2 does not use it
        "logit_scale": torch.tensor(4.6),
    }
    for i in range(layers):
        layer, block = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for leaf in ("weight", "bias"):
            state[block + f"attn.in_proj_{leaf}"] = torch.cat(
                [hf[layer + f"self_attn.{p}_proj.{leaf}"] for p in ("q", "k", "v")]
            )
            for ours, theirs in (
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("attn.out_proj", "self_attn.out_proj"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ):
                state[block + f"{ours}.{leaf}"] = hf[layer + f"{theirs}.{leaf}"]
    generator = torch.Generator().manual_seed(extra_block_seed)
    for key in [k for k in state if k.startswith("transformer.resblocks.0.")]:
        extra = key.replace("resblocks.0.", f"resblocks.{layers}.")
        state[extra] = torch.randn(state[key].shape, generator=generator)
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


class OpenClipBlock(nn.Module):
    """open_clip's ResidualAttentionBlock (pre-norm, nn.MultiheadAttention, GELU MLP)."""

    def __init__(self, width: int, heads: int, mlp_width: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, mlp_width)), ("gelu", nn.GELU()), ("c_proj", nn.Linear(mlp_width, width))]
            )
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class OpenClipTextReference(nn.Module):
    """open_clip's text tower with ldm's FrozenOpenCLIPEmbedder(layer="penultimate") forward."""

    def __init__(self, vocab: int, width: int, heads: int, mlp_width: int, blocks: int, context: int = 77):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.empty(context, width))
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList(OpenClipBlock(width, heads, mlp_width) for _ in range(blocks))
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, 32))
        self.logit_scale = nn.Parameter(torch.empty(()))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = (self.token_embedding(ids) + self.positional_embedding).permute(1, 0, 2)  # [L, B, D], as open_clip
        mask = torch.full((ids.shape[1], ids.shape[1]), float("-inf")).triu_(1)
        for block in self.transformer.resblocks[:-1]:  # penultimate: the last block is not run
            x = block(x, mask)
        return self.ln_final(x.permute(1, 0, 2))


def test_diffusers_sd2_folder_matches_transformers(tmp_path):
    """A partial SD-2 folder (text_encoder/ + tokenizer/ only), its config.json with extra keys and 4 heads (which
    the shapes alone would not give: 128 / 64 = 2), read whole, as its text_encoder/, and as the weights file."""
    hf = tiny_sd2_text_encoder(seed=2, num_attention_heads=4)
    hf.save_pretrained(tmp_path / "sd2" / "text_encoder")
    config_path = tmp_path / "sd2" / "text_encoder" / "config.json"
    config = json.loads(config_path.read_text())
    config.update(_name_or_path="stabilityai/stable-diffusion-2-1", subfolder="text_encoder")
    config_path.write_text(json.dumps(config))
    ids = random_ids(seed=3)
    expected = last_hidden_state(hf, ids)
    for path in (tmp_path / "sd2", tmp_path / "sd2" / "text_encoder"):
        encoder = open_text_encoder("openclip_h", path, tokenizer=ClipTokenizer.find(pad_token="!"))
        assert encoder.model.config.num_attention_heads == 4
        assert encoder.hidden_size == 128
        assert encoder.text_kind == "openclip_h"
        torch.testing.assert_close(encoder.model(ids), expected, rtol=0, atol=1e-5)


def test_sd2_checkpoint_in_open_clip_layout_with_its_extra_block_matches_transformers(tmp_path):
    hf = tiny_sd2_text_encoder(seed=4)
    state = {f"cond_stage_model.model.{k}": v for k, v in open_clip_state(hf).items()}
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(8, 4, 3, 3)
    state["first_stage_model.decoder.conv_in.weight"] = torch.randn(8, 4, 3, 3)
    path = tmp_path / "v2-1_768-tiny.safetensors"
    save_file(state, path)
    encoder = open_text_encoder("openclip_h", path, tokenizer=ClipTokenizer.find(pad_token="!"))
    assert encoder.model.config.num_hidden_layers == 3  # of the file's 4 blocks
    assert encoder.model.config.hidden_act == "gelu"
    assert encoder.model.config.num_attention_heads == 2
    ids = random_ids(seed=5)
    torch.testing.assert_close(encoder.model(ids), last_hidden_state(hf, ids), rtol=0, atol=1e-5)


def test_open_clip_layout_written_here_is_what_open_clip_computes():
    """The conversion above is open_clip's: torch's MultiheadAttention on those keys, penultimate, gives the HF
    output (so the test above does not merely check our loader against our own inverse)."""
    hf = tiny_sd2_text_encoder(seed=6)
    reference = OpenClipTextReference(49408, 128, 2, 96, blocks=4)
    reference.load_state_dict(open_clip_state(hf), strict=True)
    ids = random_ids(seed=7)
    with torch.no_grad():
        torch.testing.assert_close(reference.eval()(ids), last_hidden_state(hf, ids), rtol=0, atol=1e-5)
        reference.transformer.resblocks = reference.transformer.resblocks[:-1]  # the last layer instead: differs
        assert (reference(ids) - last_hidden_state(hf, ids)).abs().max() > 1e-3


def test_standalone_open_clip_file_matches_transformers(tmp_path):
    """An open_clip model file (the keys without "cond_stage_model.model.", an image tower beside), as a .bin."""
    hf = tiny_sd2_text_encoder(seed=8)
    state = open_clip_state(hf)
    state["visual.conv1.weight"] = torch.randn(8, 3, 4, 4)
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(state, path)
    encoder = open_text_encoder("openclip_h", path, tokenizer=ClipTokenizer.find(pad_token="!"))
    ids = random_ids(seed=9)
    torch.testing.assert_close(encoder.model(ids), last_hidden_state(hf, ids), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def vocabulary_folder(tmp_path_factory):
    gz = package_bpe_gz_files(("clip",))
    if not gz:
        pytest.fail("needs OpenAI's bpe_simple_vocab_16e6.txt.gz: pip install openai-clip==1.0.1")
    folder = tmp_path_factory.mktemp("sd2") / "tokenizer"
    write_tokenizer_folder(ClipTokenizer.from_bpe_gz(gz[0]).vocabulary, folder)
    # SD-2's special_tokens_map.json names "!" as the pad token (its tokenizer_config.json says <|endoftext|>).
    (folder / "special_tokens_map.json").write_text(json.dumps({"pad_token": "!"}))
    return folder


def test_exclamation_padding_equals_transformers_tokenizer(vocabulary_folder):
    """transformers' CLIPTokenizer with pad_token "!": 0 after <|endoftext|>, and every "!" written in the prompt
    is cut out as the special token it is (id 0, where CLIP-L's tokenizer gives "!</w>" = 256)."""
    from transformers import CLIPTokenizer

    hf = CLIPTokenizer.from_pretrained(vocabulary_folder, model_max_length=77, pad_token="!")
    ours = ClipTokenizer.from_folder(vocabulary_folder, pipeline=TRANSFORMERS5, pad_token="!")
    prompts = [*PROMPTS, "wow!!! great", "hello!", "! a", "a!b", "<|endoftext|>!x", "!", "！ fullwidth"]
    compared = 0
    for prompt in prompts:
        if any(0xD800 <= ord(c) < 0xE000 for c in prompt):
            continue  # transformers 5 refuses surrogates; ours raises ValueError (test_text_tokenizer_parity)
        expected = hf(prompt, padding="max_length", max_length=77, truncation=True).input_ids
        assert ours.encode(prompt) == expected, prompt
        compared += 1
    assert compared > 500
    assert ours.encode("hello!")[:5] == [49406, 3306, 0, 49407, 0]


def test_exclamation_padding_in_the_ftfy_pipeline(vocabulary_folder):
    """The webuis' pipeline (transformers 4 + ftfy) cuts "!" out of the raw text the same way, before ftfy: a
    fullwidth "！", which ftfy turns into "!", stays BPE ("!?" = 6004), as transformers 4.46 gives for SD-2.1's
    tokenizer (checked in Forge's venv). Prompts without "!" differ from CLIP-L's ids in the padding only."""
    clip_l = ClipTokenizer.from_folder(vocabulary_folder)
    sd2 = ClipTokenizer.from_folder(vocabulary_folder, pad_token="!")
    for prompt in [p for p in PROMPTS if "!" not in p and not any(0xD800 <= ord(c) < 0xE000 for c in p)]:
        expected = clip_l.encode(prompt)
        end = min(len(clip_l.tokenize(prompt)), 75) + 2  # BOS, the tokens, EOS
        assert sd2.encode(prompt) == expected[:end] + [0] * (77 - end), prompt
    assert sd2.encode("wow!!! great")[:8] == [49406, 2781, 0, 0, 0, 830, 49407, 0]
    assert sd2.encode("Ｆｕｌｌ！？")[:5] == [49406, 1476, 6004, 49407, 0]
    assert sd2.encode("<|endoftext|>!x")[:5] == [49406, 49407, 0, 343, 49407]


def test_encoder_equals_transformers_tokenizer_plus_model_from_a_partial_sd2_folder(tmp_path, vocabulary_folder):
    """open_text_encoder("openclip_h", folder).encode == CLIPTextModel(CLIPTokenizer(pad "!")), as diffusers' SD-2
    pipeline computes prompt_embeds; the tokenizer is the one beside text_encoder/."""
    from transformers import CLIPTokenizer

    hf = tiny_sd2_text_encoder(seed=10)
    hf.save_pretrained(tmp_path / "sd2" / "text_encoder")
    hf_tokenizer = CLIPTokenizer.from_pretrained(vocabulary_folder, model_max_length=77, pad_token="!")
    hf_tokenizer.save_pretrained(tmp_path / "sd2" / "tokenizer")
    encoder = open_text_encoder("openclip_h", tmp_path / "sd2" / "text_encoder", pipeline=TRANSFORMERS5)
    assert encoder.tokenizer.source.startswith(
        str(tmp_path / "sd2" / "tokenizer")
    )  # transformers 5 saves tokenizer.json
    prompts = ["a red car at night", "", "wow! (masterpiece:1.2), a cat " * 12]
    ids = hf_tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    actual = encoder.encode(prompts)
    assert actual.shape == (3, 77, 128)
    torch.testing.assert_close(actual, last_hidden_state(hf, ids), rtol=0, atol=1e-5)


def test_whole_clip_model_in_hf_layout_gives_sd2s_penultimate(tmp_path):
    """laion/CLIP-ViT-H-14's model.safetensors is a CLIPModel (vision tower, projections, all text layers): SD-2
    conditions on its text tower's penultimate layer through the final norm, which is what we read from it."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(11)
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}
    vision |= {"image_size": 8, "patch_size": 4}
    full = CLIPModel(CLIPConfig(text_config={**TINY_SD2, "num_hidden_layers": 4}, vision_config=vision)).eval()
    with torch.no_grad():
        for name, parameter in full.text_model.named_parameters():
            if "layer_norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    full.save_pretrained(tmp_path / "clip-vit-h")
    ids = random_ids(seed=12)
    with torch.no_grad():
        text = full.text_model
        hidden = text(input_ids=ids, output_hidden_states=True).hidden_states[-2]  # the input of the last layer
        expected = text.final_layer_norm(hidden)
        last_layer = text(input_ids=ids).last_hidden_state
    encoder = open_text_encoder("openclip_h", tmp_path / "clip-vit-h", tokenizer=ClipTokenizer.find(pad_token="!"))
    assert encoder.model.config.num_hidden_layers == 3
    torch.testing.assert_close(encoder.model(ids), expected, rtol=0, atol=1e-5)
    assert (expected - last_layer).abs().max() > 1e-3  # the last layer would be another conditioning
