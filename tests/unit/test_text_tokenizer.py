"""The CLIP tokenizer's own behaviour: BPE, padding, truncation, pre-tokenization, vocabulary sources, errors."""

from __future__ import annotations

import gzip
import json
import sys

import pytest

from sing_core.text import TRANSFORMERS4_FTFY, TRANSFORMERS5, ClipTokenizer, VocabularyError
from sing_core.text import tokenizer as tokenizer_module
from sing_core.text.bpe_vocab import (
    CLIP_MERGE_COUNT,
    bytes_to_unicode,
    clip_vocabulary_from_merges,
    read_bpe_gz,
    read_tokenizer_folder,
    write_tokenizer_folder,
)
from sing_core.text.fix_text import fix_text
from sing_core.text.pretokenize import pre_tokenize
from sing_core.text.vocab_sources import BPE_GZ_NAME, hub_tokenizer_folders, package_bpe_gz_files

# A tiny CLIP-numbered vocabulary: bytes, bytes + </w>, these merges, then the two specials.
TINY_MERGES = [("l", "o"), ("lo", "w</w>"), ("c", "a"), ("ca", "t</w>"), ("a", "a"), ("aa", "aa")]


@pytest.fixture
def tiny():
    return ClipTokenizer(clip_vocabulary_from_merges(TINY_MERGES, "tiny"), max_length=8)


def ids_of(tokenizer, *tokens):
    return [tokenizer.token_ids[t] for t in tokens]


def test_tiny_vocabulary_is_numbered_like_clip(tiny):
    assert len(tiny.token_ids) == 512 + len(TINY_MERGES) + 2
    assert tiny.token_ids["!"] == 0  # printable bytes first, in byte order
    assert tiny.token_ids["!</w>"] == 256
    assert tiny.token_ids["lo"] == 512
    assert (tiny.bos_id, tiny.eos_id, tiny.pad_id) == (518, 519, 519)


def test_bpe_merges_lowest_rank_first_and_marks_word_ends(tiny):
    assert tiny.tokenize("low") == ids_of(tiny, "low</w>")
    assert tiny.tokenize("lo") == ids_of(tiny, "l", "o</w>")  # "lo" + "</w>" is not a merge: "o</w>" stays
    assert tiny.tokenize("cat lows") == ids_of(tiny, "cat</w>", "lo", "w", "s</w>")
    # every occurrence of a pair, left to right, without overlap: aaaaa → aa aa a → aaaa a
    assert tiny.tokenize("aaaaa") == ids_of(tiny, "aaaa", "a</w>")


def test_encode_pads_with_eos_and_truncates_to_max_length(tiny):
    assert tiny.encode("") == [518, 519, 519, 519, 519, 519, 519, 519]
    assert tiny.encode("low cat") == [518, *ids_of(tiny, "low</w>", "cat</w>")] + [519] * 5
    long = tiny.encode("low " * 20)
    assert long == [518, *ids_of(tiny, "low</w>") * 6, 519]  # BOS + max_length - 2 + EOS
    batch = tiny(["low", "cat"])
    assert batch.shape == (2, 8)
    assert batch.dtype.is_floating_point is False


def test_prompt_must_be_text(tiny):
    with pytest.raises(TypeError, match="must be a str"):
        tiny.encode(["a list"])


def test_words_are_cached_across_prompts(tiny):
    tiny.word_ids.cache_clear()
    tiny(["cat cat low", "low cat"])
    info = tiny.word_ids.cache_info()
    assert (info.misses, info.hits) == (2, 3)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("It's A Cat!!", ["it", "'s", "a", "cat", "!!"]),
        ("''s 'x rock'n'roll", ["''", "s", "'", "x", "rock", "'", "n", "'", "roll"]),
        ("abc123 ½²", ["abc", "1", "2", "3", "½", "²"]),
        ("a<|endoftext|>b", ["a", ("<|endoftext|>",), "b"]),
        ("!!<|endoftext|>", ["!!", ("<|endoftext|>",)]),
        ("東京タワー", ["東京タワー"]),
        ("e\u0301", ["é"]),  # NFC (ftfy's last step)
        # transformers 4 lowercases the whole piece, then its pattern finds the special token: one id, no BPE
        ("a<|EndOfText|>b", ["a", ("<|endoftext|>",), "b"]),
        ("!!<|EndOfText|>", ["!!<|", "endoftext", "|>"]),  # the punctuation run takes "<|" first
        ("ΣΑΣ", ["σας"]),  # Python's str.lower(): the final sigma
        ("it'ſ <|ſtartoftext|>", ["it", "'ſ", "<|ſtartoftext|>"]),  # IGNORECASE: ſ matches "s"; not the special id
        ("a\u0345b !\u0345?", ["a", "b", "!", "?"]),  # U+0345 is in no class under IGNORECASE: dropped
        ("x\x1cy\u3000z\u200bw", ["xy", "z", "\u200b", "w"]),  # ftfy drops U+001C, U+3000 is a space
        ("“It’s” ﬁne, ＡＢＣ！", ['"', "it", "'s", '"', "fine", ",", "abc", "!"]),
        ("&amp;&quot;x&quot; &#39;y&#39;", ['&"', "x", '"', "'", "y", "'"]),
        ("\x93hi\x94 \x85", ['"', "hi", '"', "…"]),  # C1 controls read as Windows-1252, then uncurled
    ],
)
def test_pre_tokenize_cuts_like_the_webuis_tokenizer(text, words):
    assert pre_tokenize(text) == words
    assert pre_tokenize(text, TRANSFORMERS4_FTFY) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("It's A Cat!!", ["it", "'s", "a", "cat", "!!"]),
        ("a<|endoftext|>b", ["a", ("<|endoftext|>",), "b"]),
        ("a<|EndOfText|>b", ["a", "<|", "endoftext", "|>", "b"]),  # spelled out after lowercasing
        ("!!<|endoftext|>", ["!!", ("<|endoftext|>",)]),
        ("ΣΑΣ", ["σασ"]),  # per-character lowercase: no final sigma
        ("e\u0301", ["é"]),  # NFC
        ("x\x1cy\u3000z\u200bw", ["x", "\x1c", "y", "z", "\u200b", "w"]),  # only White_Space separates
        ("it'ſ a\u0345", ["it", "'", "ſ", "a", "\u0345"]),  # no IGNORECASE
        ("“It’s” ﬁne &amp;", ["“", "it", "’", "s", "”", "ﬁne", "&", "amp", ";"]),  # no ftfy
    ],
)
def test_pre_tokenize_cuts_like_transformers_5(text, words):
    assert pre_tokenize(text, TRANSFORMERS5) == words


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("“double” ‘single’ ‚low‘ „low“ ‟ ‛ ʼ", "\"double\" 'single' 'low' \"low\" \" ' '"),
        ("ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ǅ ǈ ǋ ŉ", "fi fl ff ffi ffl ſt st IJ Dž Lj Nj 'n"),  # ŉ → ʼn → 'n
        ("ＡＢＣ　ａｂｃ１２３！ ｶﾀｶﾅ ￥", "ABC abc123! カタカナ ¥"),
        ("&amp; &lt;b&gt; &quot; &#39; &#x27; &eacute; &EACUTE; &SZLIG; &nTILDE;", "& <b> \" ' ' é É SS &nTILDE;"),
        ("&amp;amp; &amp;quot;", '& "'),  # ftfy repeats its steps until nothing changes
        ("&notanentity; &amp &#xZZ; &#128; &#0;", "&notanentity; &amp &#xZZ; € \ufffd"),
        ("<b>&amp;</b>", "<b>&amp;</b>"),  # a line with "<" keeps its entities ...
        ("a &amp;\n<b> &amp;\n&amp;", "a &\n<b> &amp;\n&amp;"),  # ... and so does every line after it
        ("\x80 \x91x\x92 \x93y\x94 \x96 \x81 \x9d", "€ 'x' \"y\" – \x81 \x9d"),  # Windows-1252, undefined kept
        ("a\r\nb\rc\u2028d\u2029e\x85", "a\nb\nc\nd\ne…"),  # U+0085 is a C1 control first: "…"
        ("\x00a\x08\x0bb\x0e\x1f\x7f\ufeffc\u206a\ufffc\td\x0c", "abc\td\x0c"),
        ("\x1b[31mred\x1b[0m \x1b[1;2mx", "red x"),
        ("\ud83d\ude00 \ud800", "😀 \ufffd"),
        ("e\u0301 A\u030a \u212b \u2126", "é Å Å Ω"),
        ("cafÃ©", "cafÃ©"),  # mojibake is left as it is (ftfy.fix_text would give "café")
    ],
)
def test_fix_text_does_what_ftfy_does(text, fixed):
    assert fix_text(text) == fixed


def test_tokenizer_pipeline_is_checked_and_surrogates_are_named(tiny):
    with pytest.raises(ValueError, match="transformers4-ftfy, transformers5"):
        ClipTokenizer(tiny.vocabulary, pipeline="ftfy")
    raw = ClipTokenizer(tiny.vocabulary, max_length=8, pipeline=TRANSFORMERS5)
    with pytest.raises(ValueError, match="UTF-16 surrogates"):
        raw.tokenize("lone \ud800")
    assert tiny.tokenize("lone \ud800") == tiny.tokenize("lone \ufffd")  # ftfy's replacement character


def test_bytes_to_unicode_is_a_reversible_table_of_printable_characters():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert not any(c.isspace() for c in table.values())


def test_folder_round_trip_keeps_vocabulary_and_merges(tmp_path):
    vocabulary = clip_vocabulary_from_merges(TINY_MERGES, "tiny")
    write_tokenizer_folder(vocabulary, tmp_path)
    read = read_tokenizer_folder(tmp_path)
    assert (read.token_ids, read.merges) == (vocabulary.token_ids, vocabulary.merges)
    assert (tmp_path / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\nl o\n")


def test_tokenizer_json_folder_is_read(tmp_path):
    vocabulary = clip_vocabulary_from_merges(TINY_MERGES, "tiny")
    model = {"type": "BPE", "vocab": vocabulary.token_ids, "merges": [list(m) for m in vocabulary.merges]}
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": model}), encoding="utf-8")
    tokenizer = ClipTokenizer.from_path(tmp_path / "tokenizer.json", max_length=8)
    assert tokenizer.encode("cat")[1] == tokenizer.token_ids["cat</w>"]


def test_folder_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(VocabularyError, match=r"no vocab.json"):
        read_tokenizer_folder(tmp_path)
    vocabulary = clip_vocabulary_from_merges(TINY_MERGES, "tiny")
    write_tokenizer_folder(vocabulary, tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nl o\nx y z\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"merges.txt: line 3"):
        read_tokenizer_folder(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nq z\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="do not belong together"):
        read_tokenizer_folder(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 1}), encoding="utf-8")
    with pytest.raises(VocabularyError, match="required tokens are missing"):
        read_tokenizer_folder(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(VocabularyError, match="cannot read"):
        read_tokenizer_folder(tmp_path)


def test_bpe_gz_errors(tmp_path):
    short = tmp_path / "short.txt.gz"
    with gzip.open(short, "wt", encoding="utf-8") as stream:
        stream.write("header\nl o\n")
    with pytest.raises(VocabularyError, match=f"has 1 merges, CLIP needs {CLIP_MERGE_COUNT}"):
        read_bpe_gz(short)
    not_gz = tmp_path / "plain.txt.gz"
    not_gz.write_text("plain text", encoding="utf-8")
    with pytest.raises(VocabularyError, match="cannot read the BPE merges gz"):
        read_bpe_gz(not_gz)


def test_bpe_gz_matches_the_clip_numbering(tmp_path):
    """A gz with a header, CLIP's number of merges and lines past the cut: numbered as clip_vocabulary_from_merges
    numbers them, the extra lines left out."""
    symbols = list(bytes_to_unicode().values())
    taken = {a + b for a, b in TINY_MERGES}
    filler = [(a, b) for a in symbols for b in symbols if a + b not in taken][: CLIP_MERGE_COUNT - len(TINY_MERGES)]
    merges = TINY_MERGES + filler
    path = tmp_path / BPE_GZ_NAME
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        lines = ["bpe_simple_vocab_16e6.txt#version: 0.2", *(f"{a} {b}" for a, b in merges), "x y", "past the cut"]
        stream.write("\n".join(lines) + "\n")
    vocabulary = read_bpe_gz(path)
    assert vocabulary.merges == tuple(merges)
    assert vocabulary.token_ids == clip_vocabulary_from_merges(merges, "expected").token_ids
    assert (vocabulary.token_ids["<|startoftext|>"], vocabulary.token_ids["<|endoftext|>"]) == (49406, 49407)


def fake_hub_cache(root, vocabulary):
    folder = root / "models--openai--clip-vit-large-patch14" / "snapshots" / "abc123"
    write_tokenizer_folder(vocabulary, folder)
    return folder


def test_find_prefers_given_paths_then_the_hub_cache(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    folder = fake_hub_cache(hub, clip_vocabulary_from_merges(TINY_MERGES, "tiny"))
    assert hub_tokenizer_folders([hub]) == [folder]
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(tokenizer_module, "package_bpe_gz_files", list)
    assert ClipTokenizer.find().source == str(folder)
    given = write_tokenizer_folder(clip_vocabulary_from_merges(TINY_MERGES[:2], "given"), tmp_path / "given")
    assert ClipTokenizer.find([given]).source == str(given)


def test_find_without_any_source_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(tokenizer_module, "package_bpe_gz_files", list)
    with pytest.raises(VocabularyError) as error:
        ClipTokenizer.find([tmp_path / "nowhere"])
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "hf" / "hub") in message
    assert "pip install openai-clip" in message
    assert "vocab.json and merges.txt" in message


def test_package_gz_is_found_without_importing_the_package(tmp_path, monkeypatch):
    package = tmp_path / "open_clip"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n", encoding="utf-8")
    (package / BPE_GZ_NAME).write_bytes(gzip.compress(b"header\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "open_clip", raising=False)
    assert package_bpe_gz_files(("open_clip",)) == [package / BPE_GZ_NAME]
    assert "open_clip" not in sys.modules
    monkeypatch.setitem(sys.modules, "open_clip", None)  # a package hidden by the host is skipped, not an error
    assert package_bpe_gz_files(("open_clip",)) == []


def test_sd15_ids_of_a_known_prompt():
    """CLIP's published ids for "a photo of a cat" (a</w> 320, photo</w> 1125, of</w> 539, cat</w> 2368)."""
    found = package_bpe_gz_files()
    if not found:
        pytest.fail("needs bpe_simple_vocab_16e6.txt.gz: pip install openai-clip==1.0.1")
    tokenizer = ClipTokenizer.from_bpe_gz(found[0])
    assert tokenizer.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368] + [49407] * 71
    assert len(tokenizer.encode("word " * 200)) == 77
