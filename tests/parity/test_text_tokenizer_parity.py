"""Our CLIP tokenizer against transformers' CLIPTokenizer built from the same vocabulary, and OpenAI's vocab numbering.

The vocabulary is OpenAI's bpe_simple_vocab_16e6.txt.gz from the installed `clip` package (openai-clip). Its own
SimpleTokenizer (loaded from the file, not through clip/__init__, which imports torchvision) gives the reference
token numbering; transformers saves that as it saves any CLIP tokenizer, and the comparisons load that folder.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata

import pytest
from text_prompts import HAND_PICKED, random_prompts

from sing_core.text import ClipTokenizer
from sing_core.text.bpe_vocab import read_bpe_gz, read_tokenizer_folder, write_tokenizer_folder
from sing_core.text.pretokenize import WHITE_SPACE, is_letter, is_number
from sing_core.text.vocab_sources import package_bpe_gz_files

PROMPTS = HAND_PICKED + random_prompts(240)


@pytest.fixture(scope="module")
def bpe_gz():
    found = package_bpe_gz_files(("clip",))
    if not found:
        pytest.fail("the parity tests need OpenAI's bpe_simple_vocab_16e6.txt.gz: pip install openai-clip==1.0.1")
    return found[0]


@pytest.fixture(scope="module")
def openai_simple_tokenizer(bpe_gz):
    spec = importlib.util.spec_from_file_location("openai_clip_simple_tokenizer", bpe_gz.parent / "simple_tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SimpleTokenizer(str(bpe_gz))


@pytest.fixture(scope="module")
def hf_saved_folder(openai_simple_tokenizer, tmp_path_factory):
    """OpenAI's vocabulary as transformers writes it (tokenizer.json)."""
    from transformers import CLIPTokenizer

    ranks = openai_simple_tokenizer.bpe_ranks
    hf = CLIPTokenizer(vocab=dict(openai_simple_tokenizer.encoder), merges=sorted(ranks, key=ranks.get))
    folder = tmp_path_factory.mktemp("hf_clip_tokenizer")
    hf.save_pretrained(folder)
    return folder


def build_hf_tokenizer(folder):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, model_max_length=77, pad_token="<|endoftext|>")


def hf_ids(tokenizer, prompts):
    return tokenizer(prompts, padding="max_length", max_length=77, truncation=True)["input_ids"]


def test_gz_vocabulary_equals_openai_numbering_and_what_transformers_saves(
    bpe_gz, openai_simple_tokenizer, hf_saved_folder
):
    ours = read_bpe_gz(bpe_gz)
    ranks = openai_simple_tokenizer.bpe_ranks
    assert ours.token_ids == openai_simple_tokenizer.encoder
    assert list(ours.merges) == sorted(ranks, key=ranks.get)
    saved = read_tokenizer_folder(hf_saved_folder)
    assert saved.token_ids == ours.token_ids
    assert saved.merges == ours.merges
    assert len(ours.token_ids) == 49408
    assert (ours.token_ids["<|startoftext|>"], ours.token_ids["<|endoftext|>"]) == (49406, 49407)


def test_our_vocab_json_and_merges_txt_load_into_transformers_unchanged(bpe_gz, hf_saved_folder, tmp_path):
    """The pair of files we write (the layout of the HF cache of openai/clip-vit-large-patch14) is read by
    transformers into the same BPE model as the one it saved itself."""
    write_tokenizer_folder(read_bpe_gz(bpe_gz), tmp_path)
    reloaded_folder = tmp_path / "resaved"
    build_hf_tokenizer(tmp_path).save_pretrained(reloaded_folder)
    model = json.loads((reloaded_folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    reference = json.loads((hf_saved_folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    assert model["vocab"] == reference["vocab"]
    assert model["merges"] == reference["merges"]


def test_transformers_5_has_one_clip_tokenizer():
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    assert CLIPTokenizerFast is CLIPTokenizer


@pytest.mark.parametrize("ftfy_state", ["installed", "hidden"])
def test_ids_equal_transformers_on_all_prompts(ftfy_state, bpe_gz, hf_saved_folder, monkeypatch, tmp_path):
    if ftfy_state == "hidden":
        monkeypatch.setitem(sys.modules, "ftfy", None)
        with pytest.raises(ImportError):
            import ftfy
    else:
        import ftfy  # noqa: F401  (the with-ftfy case must really have it)
    write_tokenizer_folder(read_bpe_gz(bpe_gz), tmp_path)
    hf = build_hf_tokenizer(hf_saved_folder)
    ours_by_source = {
        "gz": ClipTokenizer.from_bpe_gz(bpe_gz),
        "vocab.json+merges.txt": ClipTokenizer.from_folder(tmp_path),
        "tokenizer.json": ClipTokenizer.from_folder(hf_saved_folder),
    }
    expected = hf_ids(hf, PROMPTS)
    assert len(PROMPTS) >= 300
    for source, ours in ours_by_source.items():
        mismatches = [(p, e) for p, e in zip(PROMPTS, expected, strict=True) if ours.encode(p) != e]
        assert mismatches == [], f"{source}: {len(mismatches)} prompts differ, first {mismatches[0][0]!r}"
        assert ours(PROMPTS).tolist() == expected


def test_the_prompts_cover_truncation_padding_and_special_tokens(bpe_gz):
    tokenizer = ClipTokenizer.from_bpe_gz(bpe_gz)
    lengths = [len(tokenizer.tokenize(p)) for p in PROMPTS]
    assert sum(n > 75 for n in lengths) >= 5  # truncated
    assert sum(n == 0 for n in lengths) >= 3  # BOS, EOS and 75 pads
    assert sum(49407 in tokenizer.tokenize(p) for p in PROMPTS) >= 5  # <|endoftext|> written in the prompt


def test_transformers_applies_no_ftfy_even_when_installed(bpe_gz, hf_saved_folder):
    """transformers 5's CLIPTokenizer ignores ftfy (4.x's slow tokenizer ran ftfy.fix_text): ids for the raw text,
    not for the ftfy-fixed text; ours does the same."""
    import ftfy

    hf = build_hf_tokenizer(hf_saved_folder)
    ours = ClipTokenizer.from_bpe_gz(bpe_gz)
    changed = [p for p in HAND_PICKED if ftfy.fix_text(p) != p]
    differing = [p for p in changed if hf_ids(hf, [ftfy.fix_text(p)]) != hf_ids(hf, [p])]
    assert len(differing) >= 3  # curly quotes, ligatures, fullwidth, HTML entities
    for prompt in differing:
        assert ours.encode(prompt) == hf_ids(hf, [prompt])[0]


def _onig_members(pattern: str, text: str) -> set[str]:
    from tokenizers import Regex, normalizers

    return set(normalizers.Replace(Regex(pattern), "").normalize_str(text))


def test_character_classes_equal_oniguruma_for_every_known_code_point():
    known = "".join(
        chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"
    )
    assert {c for c in known if is_letter(c)} == _onig_members(r"[^\p{L}]", known)
    assert {c for c in known if is_number(c)} == _onig_members(r"[^\p{N}]", known)
    assert {c for c in known if c in WHITE_SPACE} == _onig_members(r"[^\s]", known)


def test_per_character_lowercase_equals_tokenizers_lowercase():
    from tokenizers import normalizers

    lowercase = normalizers.Lowercase()
    known = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) in {"Lu", "Lt", "Ll", "Lm", "Lo", "Nl", "So"}
    ]
    assert [c for c in known if lowercase.normalize_str(c) != c.lower()] == []
    assert lowercase.normalize_str("ΣΑΣ") == "σασ"  # no final-sigma rule, unlike str.lower()
