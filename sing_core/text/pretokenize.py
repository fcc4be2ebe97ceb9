"""Text → words for BPE, as a host's CLIP tokenizer cuts it; the two ways hosts do it have their names here.

TRANSFORMERS4_FTFY: transformers 4's slow CLIPTokenizer with ftfy installed, what the webuis load (A1111 v1.10.1:
transformers 4.30, Forge: 4.46; tokenization_clip.py and tokenization_utils.py):
1. The raw text is cut at each <|startoftext|> / <|endoftext|> written exactly so (the added-tokens trie), and at
   the pad token where that is another token (SD-2's "!"); those are their own ids.
2. Each piece between them: `whitespace_clean(ftfy.fix_text(piece)).lower()`: ftfy (sing_core.text.fix_text), runs
   of \\s to one space, str.strip(), then Python's str.lower() (with its final-sigma rule: "ΣΑΣ" → "σας").
3. The matches of CLIP's pattern, compiled with `regex` and IGNORECASE:
       <\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
   A match that spells a special token (from "<|EndOfText|>" after lowercasing) is that special token's id (the BPE
   cache holds both). IGNORECASE shows in lowercase text in two places only: "ſ" matches the "s" of "'s" and of
   "<|startoftext|>", and U+0345 (whose case fold ι is a letter) is in no class, so re.findall drops it.

TRANSFORMERS5: transformers 5's CLIPTokenizer (the `tokenizers` backend; ftfy is never used), as ComfyUI's venv has:
1. The special tokens are cut out of the raw text first, as above.
2. NFC, runs of \\s to " ", then a per-character lowercase (Rust's: "ΣΑΣ" → "σασ").
3. The same pattern without IGNORECASE, then GPT-2's ByteLevel split, which only cuts a piece that spells a special
   token: "<|", "endoftext", "|>".

OPEN_CLIP: open_clip's SimpleTokenizer (open-clip-torch 2.20), A1111's tokenizer for SD-2's OpenCLIP ViT-H:
1. No cut in the raw text: `whitespace_clean(basic_clean(text)).lower()` on all of it, basic_clean being ftfy,
   html.unescape twice and str.strip().
2. The pattern of TRANSFORMERS4_FTFY with IGNORECASE, but its special tokens are spelled <start_of_text> and
   <end_of_text> (the same ids); "<|endoftext|>" written in a prompt is plain text, and no pad token is cut out.

\\s, \\p{L} and \\p{N} are Unicode's White_Space and categories L* and N*. A character newer than the interpreter's
Unicode (Python 3.11: Unicode 14.0) has no category here and counts as punctuation; `regex` and `tokenizers` know it
(a letter of a script added since, say), so prompts with such letters or digits get other ids than the host's.
"""

from __future__ import annotations

import html
import re
import unicodedata

from sing_core.text.bpe_vocab import END_OF_TEXT, START_OF_TEXT
from sing_core.text.fix_text import fix_text

TRANSFORMERS4_FTFY = "transformers4-ftfy"
TRANSFORMERS5 = "transformers5"
OPEN_CLIP = "open-clip"
PIPELINES = (TRANSFORMERS4_FTFY, TRANSFORMERS5, OPEN_CLIP)

SPECIAL_TOKENS = (START_OF_TEXT, END_OF_TEXT)
SPECIAL_TOKEN_PATTERN = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")  # the group keeps them
# open_clip names the same two tokens otherwise, and finds them only by its pattern, in the cleaned text.
OPEN_CLIP_SPECIAL_TOKENS = {"<start_of_text>": START_OF_TEXT, "<end_of_text>": END_OF_TEXT}
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")  # in the pattern's order: the first that fits wins
# Unicode's White_Space property (= `regex`'s and Oniguruma's \s). Not str.isspace(): that also takes U+001C..U+001F.
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
WHITE_SPACE_RUN = re.compile("[" + "".join(sorted(WHITE_SPACE)) + "]+")
# IGNORECASE in lowercase text: the characters whose simple case fold is an ASCII letter of the pattern's literals,
# and the one character that the negated class [^\s\p{L}\p{N}] leaves out (tests/parity checks both on `regex`).
IGNORECASE_FOLDS = {"ſ": "s"}
IGNORECASE_UNMATCHED = frozenset("\u0345")


def is_letter(char: str) -> bool:
    """\\p{L}: general category Lu, Ll, Lt, Lm or Lo."""
    return unicodedata.category(char)[0] == "L"


def is_number(char: str) -> bool:
    """\\p{N}: general category Nd, Nl or No (digits, Ⅻ, ², ①, ½ ...)."""
    return unicodedata.category(char)[0] == "N"


def is_punctuation(char: str, ignore_case: bool = False) -> bool:
    """[^\\s\\p{L}\\p{N}]: not whitespace, a letter or a number (with IGNORECASE, not U+0345 either)."""
    unmatched = ignore_case and char in IGNORECASE_UNMATCHED
    return not (char in WHITE_SPACE or is_letter(char) or is_number(char) or unmatched)


def split_special_tokens(text: str, added_tokens: tuple[str, ...] = ()) -> list[str]:
    """Cut the raw text at each <|startoftext|> / <|endoftext|> (and each of `added_tokens`); those are kept as
    their own items."""
    pattern = SPECIAL_TOKEN_PATTERN
    if added_tokens:
        pattern = re.compile("(" + "|".join(map(re.escape, (*SPECIAL_TOKENS, *added_tokens))) + ")")
    return [part for part in pattern.split(text) if part]


def clean_transformers4(segment: str) -> str:
    """transformers 4's CLIPTokenizer._tokenize with ftfy: whitespace_clean(ftfy.fix_text(text)).lower()."""
    return WHITE_SPACE_RUN.sub(" ", fix_text(segment)).strip().lower()


def normalize_transformers5(segment: str) -> str:
    """NFC, then a per-character lowercase (the whitespace folding is left out: the split drops all whitespace)."""
    return "".join(char.lower() for char in unicodedata.normalize("NFC", segment))


def _literal_at(text: str, position: int, literal: str, ignore_case: bool) -> bool:
    if not ignore_case:
        return text.startswith(literal, position)
    found = text[position : position + len(literal)]
    if len(found) != len(literal):
        return False
    return all(wanted in (char, IGNORECASE_FOLDS.get(char)) for char, wanted in zip(found, literal, strict=True))


def clean_open_clip(text: str) -> str:
    """open_clip's SimpleTokenizer.encode: whitespace_clean(basic_clean(text)).lower(), where basic_clean is ftfy,
    html.unescape twice, str.strip()."""
    return WHITE_SPACE_RUN.sub(" ", html.unescape(html.unescape(fix_text(text))).strip()).strip().lower()


def clip_pieces(text: str, ignore_case: bool = False, specials: tuple[str, ...] = SPECIAL_TOKENS) -> list[str]:
    """The matches of CLIP's pattern in `text` (already lowercased), in order, as re.findall gives them; `specials`
    are the pattern's first alternatives."""
    pieces, position, length = [], 0, len(text)
    while position < length:
        char, end = text[position], position + 1
        special = next((t for t in specials if _literal_at(text, position, t, ignore_case)), None)
        contraction = next((c for c in CONTRACTIONS if _literal_at(text, position, c, ignore_case)), None)
        if special or contraction:
            end = position + len(special or contraction)
        elif is_letter(char):
            while end < length and is_letter(text[end]):
                end += 1
        elif is_punctuation(char, ignore_case):  # a run of anything but whitespace, letters and numbers
            while end < length and is_punctuation(text[end], ignore_case):
                end += 1
        elif not is_number(char):  # whitespace, or a character no alternative matches: findall moves on
            position = end
            continue
        pieces.append(text[position:end])
        position = end
    return pieces


def pre_tokenize(
    text: str, pipeline: str = TRANSFORMERS4_FTFY, added_tokens: tuple[str, ...] = ()
) -> list[str | tuple[str]]:
    """Words for BPE, in order; a special token comes back as a 1-tuple (its own id, no BPE).

    `added_tokens` are cut out of the raw text like the special tokens, before any cleaning: transformers does so
    with every special token of a tokenizer, SD-2's pad token "!" included (so "wow!" is "wow" + "!" = id 0).
    """
    words: list[str | tuple[str]] = []
    if pipeline == OPEN_CLIP:  # no added tokens: the whole text is cleaned, its specials found by the pattern
        pieces = clip_pieces(clean_open_clip(text), True, tuple(OPEN_CLIP_SPECIAL_TOKENS))
        return [(OPEN_CLIP_SPECIAL_TOKENS[p],) if p in OPEN_CLIP_SPECIAL_TOKENS else p for p in pieces]
    for part in split_special_tokens(text, added_tokens):
        if part in SPECIAL_TOKENS or part in added_tokens:
            words.append((part,))
        elif pipeline == TRANSFORMERS4_FTFY:
            words += [(p,) if p in SPECIAL_TOKENS else p for p in clip_pieces(clean_transformers4(part), True)]
        elif pipeline == TRANSFORMERS5:
            for piece in clip_pieces(normalize_transformers5(part)):
                words += ["<|", piece[2:-2], "|>"] if piece in SPECIAL_TOKENS else [piece]
        else:
            raise ValueError(f"unknown tokenizer pipeline {pipeline!r}; use one of {', '.join(PIPELINES)}")
    return words
