"""Our CLIP tokenizer against the real libraries: ftfy + OpenAI's CLIP tokenizer, and transformers' CLIPTokenizer.

The vocabulary is OpenAI's bpe_simple_vocab_16e6.txt.gz from the installed `clip` package (openai-clip). Its own
SimpleTokenizer (loaded from the file, not through clip/__init__, which imports torchvision) gives the reference
numbering, the `regex` pattern and the BPE; transformers saves that as it saves any CLIP tokenizer.

The default pipeline is the webuis' tokenizer, transformers 4's slow CLIPTokenizer with ftfy. transformers 4 is not
installed here (CI has transformers 5, whose CLIPTokenizer never runs ftfy), so its tokenize()/_tokenize() is composed
from the pieces it runs: the added-token split, ftfy.fix_text, whitespace_clean, str.lower(), OpenAI's pattern and BPE
(transformers' tokenization_clip.py has the same pattern, flags and BPE). tests/live/test_webui_tokenizer.py compares
with the webuis' own transformers 4.30 (A1111) and 4.46 (Forge) in their own interpreters.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import json
import re
import sys
import unicodedata

import ftfy
import pytest
import regex
from text_prompts import FTFY_CASES, HAND_PICKED, MOJIBAKE, PROMPTS, ftfy_prompts

from sing_core.text import TRANSFORMERS5, ClipTokenizer
from sing_core.text.bpe_vocab import read_bpe_gz, read_tokenizer_folder, write_tokenizer_folder
from sing_core.text.fix_text import fix_text
from sing_core.text.pretokenize import (
    CONTRACTIONS,
    IGNORECASE_FOLDS,
    SPECIAL_TOKENS,
    WHITE_SPACE,
    is_letter,
    is_number,
    is_punctuation,
)
from sing_core.text.vocab_sources import package_bpe_gz_files

# transformers 4.30 / 4.46 tokenization_clip.py: CLIPTokenizer.pat, compiled with `import regex as re`.
TRANSFORMERS4_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
SPECIAL_SPLIT = re.compile(r"(<\|startoftext\|>|<\|endoftext\|>)")
KNOWN_CODE_POINTS = "".join(
    chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"
)
fix_text_without_mojibake_repair = functools.partial(ftfy.fix_text, fix_encoding=False)


def has_surrogates(text: str) -> bool:
    """Lone or paired UTF-16 surrogates: ftfy mends them, transformers 5 refuses the text."""
    return any(0xD800 <= ord(c) < 0xE000 for c in text)


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


@pytest.fixture(scope="module")
def ours_by_source(bpe_gz, hf_saved_folder, tmp_path_factory):
    """Our tokenizer from each kind of vocabulary source: the gz, vocab.json + merges.txt, tokenizer.json."""
    folder = write_tokenizer_folder(read_bpe_gz(bpe_gz), tmp_path_factory.mktemp("vocab_merges"))
    return {
        "gz": ClipTokenizer.from_bpe_gz(bpe_gz),
        "vocab.json+merges.txt": ClipTokenizer.from_folder(folder),
        "tokenizer.json": ClipTokenizer.from_folder(hf_saved_folder),
    }


def transformers4_ids(simple, prompt, fix=ftfy.fix_text):
    """transformers 4's CLIPTokenizer(prompt, add_special_tokens=False) with ftfy, from the pieces it runs."""
    ids = []
    for part in SPECIAL_SPLIT.split(prompt):  # PreTrainedTokenizer.tokenize: the added-tokens trie
        if part in SPECIAL_TOKENS:
            ids.append(simple.encoder[part])
        elif part:  # CLIPTokenizer._tokenize: whitespace_clean(self.fix_text(text)).lower(), then pat and bpe
            text = regex.sub(r"\s+", " ", fix(part)).strip().lower()
            for token in regex.findall(simple.pat, text):
                symbols = "".join(simple.byte_encoder[b] for b in token.encode("utf-8"))
                ids.extend(simple.encoder[s] for s in simple.bpe(symbols).split(" "))
    return ids


def build_hf_tokenizer(folder):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, model_max_length=77, pad_token="<|endoftext|>")


def hf_ids(tokenizer, prompts):
    return tokenizer(prompts, padding="max_length", max_length=77, truncation=True)["input_ids"]


def test_openai_tokenizer_runs_the_pattern_and_cache_of_transformers_4(openai_simple_tokenizer):
    """What makes the composed reference transformers 4's: the same pattern and flags, the same special-token cache."""
    assert openai_simple_tokenizer.pat.pattern == TRANSFORMERS4_PATTERN
    assert openai_simple_tokenizer.pat.flags & regex.IGNORECASE
    assert openai_simple_tokenizer.cache == {token: token for token in SPECIAL_TOKENS}


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


def test_fix_text_equals_ftfy_without_its_mojibake_repair():
    texts = PROMPTS + ftfy_prompts(1500, seed=7) + [line for p in PROMPTS for line in p.splitlines(keepends=True)]
    differing = [t for t in texts if fix_text(t) != fix_text_without_mojibake_repair(t)]
    assert differing == [], f"{len(differing)} of {len(texts)} texts, first {differing[:3]!r}"


def test_mojibake_repair_is_the_only_difference_from_ftfy():
    """ftfy.fix_text's default configuration differs from ours on exactly the mojibake prompts, which it repairs."""
    differing = [p for p in PROMPTS if fix_text(p) != ftfy.fix_text(p)]
    assert sorted(differing) == sorted(MOJIBAKE)
    assert all(ftfy.fix_text(p) != p for p in MOJIBAKE)


def test_ids_equal_transformers_4_with_ftfy_on_all_prompts(openai_simple_tokenizer, ours_by_source):
    assert len(PROMPTS) >= 300
    for source, ours in ours_by_source.items():
        mismatches = [p for p in PROMPTS if ours.tokenize(p) != transformers4_ids(openai_simple_tokenizer, p)]
        assert sorted(mismatches) == sorted(MOJIBAKE), f"{source}: {len(mismatches)} prompts differ"
        for prompt in mismatches:  # the one class left out: equal once ftfy's mojibake repair is off
            assert ours.tokenize(prompt) == transformers4_ids(
                openai_simple_tokenizer, prompt, fix_text_without_mojibake_repair
            )


def test_encode_pads_and_truncates_the_transformers_4_ids(openai_simple_tokenizer, ours_by_source):
    ours = ours_by_source["gz"]
    for prompt in PROMPTS:
        if prompt in MOJIBAKE:
            continue
        content = transformers4_ids(openai_simple_tokenizer, prompt)[:75]
        assert ours.encode(prompt) == [49406, *content, 49407] + [49407] * (75 - len(content))


def test_ids_equal_openai_clip_where_its_cleaning_is_the_webuis(openai_simple_tokenizer, ours_by_source):
    """OpenAI's SimpleTokenizer.encode: ftfy.fix_text and html.unescape twice over the whole text, whitespace clean,
    lower. Its ids are ours for every prompt but three kinds: the mojibake ones, those its lenient second unescaping
    changes ("&amp" without ";", entities in a line that holds "<"), and those with a special token written in them
    (transformers cuts those out first; OpenAI's pattern may swallow them into a punctuation run: "!!<|")."""
    ours = ours_by_source["gz"]
    simple = openai_simple_tokenizer
    unescaped_again = {p for p in PROMPTS if html.unescape(html.unescape(ftfy.fix_text(p))) != ftfy.fix_text(p)}
    with_special = {p for p in PROMPTS if SPECIAL_SPLIT.search(p)}
    compared = [p for p in PROMPTS if p not in set(MOJIBAKE) | unescaped_again | with_special]
    assert len(compared) >= 300
    assert [p for p in compared if ours.tokenize(p) != simple.encode(p)] == []
    for kind in (unescaped_again, with_special):  # the comparison would see it: OpenAI's really differs on these
        differing = [p for p in kind if ours.tokenize(p) != simple.encode(p)]
        assert len(differing) >= 5
        assert all(ours.tokenize(p) == transformers4_ids(simple, p) for p in differing if p not in MOJIBAKE)


def test_transformers_5_has_one_clip_tokenizer():
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    assert CLIPTokenizerFast is CLIPTokenizer


@pytest.mark.parametrize("ftfy_state", ["installed", "hidden"])
def test_transformers5_pipeline_ids_equal_transformers_5(ftfy_state, bpe_gz, hf_saved_folder, monkeypatch, tmp_path):
    if ftfy_state == "hidden":
        monkeypatch.setitem(sys.modules, "ftfy", None)
        with pytest.raises(ImportError):
            import ftfy as hidden  # noqa: F401
    write_tokenizer_folder(read_bpe_gz(bpe_gz), tmp_path)
    hf = build_hf_tokenizer(hf_saved_folder)
    ours_by_source = {
        "gz": ClipTokenizer.from_bpe_gz(bpe_gz, pipeline=TRANSFORMERS5),
        "vocab.json+merges.txt": ClipTokenizer.from_folder(tmp_path, pipeline=TRANSFORMERS5),
        "tokenizer.json": ClipTokenizer.from_folder(hf_saved_folder, pipeline=TRANSFORMERS5),
    }
    prompts = [p for p in PROMPTS if not has_surrogates(p)]
    expected = hf_ids(hf, prompts)
    assert len(prompts) >= 300
    for source, ours in ours_by_source.items():
        mismatches = [(p, e) for p, e in zip(prompts, expected, strict=True) if ours.encode(p) != e]
        assert mismatches == [], f"{source}: {len(mismatches)} prompts differ, first {mismatches[0][0]!r}"
        assert ours(prompts).tolist() == expected


def test_transformers_5_applies_no_ftfy_and_the_webuis_do(bpe_gz, hf_saved_folder, openai_simple_tokenizer):
    """transformers 5's CLIPTokenizer ignores ftfy even when installed; the two pipelines part where ftfy acts."""
    hf = build_hf_tokenizer(hf_saved_folder)
    webui = ClipTokenizer.from_bpe_gz(bpe_gz)
    raw = ClipTokenizer.from_bpe_gz(bpe_gz, pipeline=TRANSFORMERS5)
    changed = [p for p in HAND_PICKED + FTFY_CASES if ftfy.fix_text(p) != p and not has_surrogates(p)]
    differing = [p for p in changed if hf_ids(hf, [ftfy.fix_text(p)]) != hf_ids(hf, [p])]
    assert len(differing) >= 20  # curly quotes, ligatures, fullwidth, HTML entities, C1 controls ...
    for prompt in differing:
        assert raw.encode(prompt) == hf_ids(hf, [prompt])[0]
        assert webui.tokenize(prompt) == transformers4_ids(openai_simple_tokenizer, prompt)
        assert webui.encode(prompt) != raw.encode(prompt)


def test_the_prompts_cover_truncation_padding_special_tokens_and_ftfy(bpe_gz):
    tokenizer = ClipTokenizer.from_bpe_gz(bpe_gz)
    lengths = [len(tokenizer.tokenize(p)) for p in PROMPTS]
    assert sum(n > 75 for n in lengths) >= 10  # truncated
    assert sum(n == 0 for n in lengths) >= 3  # BOS, EOS and 75 pads
    assert sum(49407 in tokenizer.tokenize(p) for p in PROMPTS) >= 5  # <|endoftext|> written in the prompt
    assert sum(fix_text(p) != p for p in PROMPTS) >= 250  # text ftfy rewrites
    assert sum(bool(re.search(r"&#?\w+;", p)) for p in PROMPTS) >= 50  # HTML entities
    assert sum(any(unicodedata.category(c) == "So" for c in p) for p in PROMPTS) >= 100  # emoji and symbols


def _onig_members(pattern: str, text: str) -> set[str]:
    from tokenizers import Regex, normalizers

    return set(normalizers.Replace(Regex(pattern), "").normalize_str(text))


def test_character_classes_equal_oniguruma_for_every_known_code_point():
    """TRANSFORMERS5: the pattern's classes as the `tokenizers` backend (Oniguruma) has them."""
    known = KNOWN_CODE_POINTS
    assert {c for c in known if is_letter(c)} == _onig_members(r"[^\p{L}]", known)
    assert {c for c in known if is_number(c)} == _onig_members(r"[^\p{N}]", known)
    assert {c for c in known if c in WHITE_SPACE} == _onig_members(r"[^\s]", known)


def test_character_classes_equal_regex_with_ignorecase_for_every_known_code_point():
    """TRANSFORMERS4_FTFY: the classes of CLIPTokenizer.pat (`regex`, IGNORECASE) and whitespace_clean's \\s."""
    known = KNOWN_CODE_POINTS

    def members(pattern):
        compiled = regex.compile(pattern, regex.IGNORECASE)
        return {c for c in known if compiled.match(c)}

    assert {c for c in known if is_letter(c)} == members(r"[\p{L}]")
    assert {c for c in known if is_number(c)} == members(r"[\p{N}]")
    assert {c for c in known if is_punctuation(c, ignore_case=True)} == members(r"[^\s\p{L}\p{N}]")
    assert {c for c in known if c in WHITE_SPACE} == members(r"\s")


def test_ignorecase_folds_are_every_character_of_lowercase_text_that_matches_a_literal():
    """The literals are the special tokens and contractions; the text they meet has been through str.lower()."""
    lowercase_text = "".join(set("".join(k.lower() for k in KNOWN_CODE_POINTS)))
    letters = set("".join(SPECIAL_TOKENS + CONTRACTIONS)) - set("<|'")
    expected = {
        c: letter for letter in letters for c in regex.findall(letter, lowercase_text, regex.IGNORECASE) if c != letter
    }
    assert expected == IGNORECASE_FOLDS


def test_per_character_lowercase_equals_tokenizers_lowercase():
    from tokenizers import normalizers

    lowercase = normalizers.Lowercase()
    known = [c for c in KNOWN_CODE_POINTS if unicodedata.category(c) in {"Lu", "Lt", "Ll", "Lm", "Lo", "Nl", "So"}]
    assert [c for c in known if lowercase.normalize_str(c) != c.lower()] == []
    assert lowercase.normalize_str("ΣΑΣ") == "σασ"  # no final-sigma rule, unlike str.lower()
