"""Text → words, as Hugging Face's CLIPTokenizer (transformers 5, the `tokenizers` backend) cuts it before BPE.

Its pipeline, which this module reproduces without the `regex` package:
1. The special tokens <|startoftext|> / <|endoftext|> are cut out of the raw text first (they are "not normalized").
2. Each remaining segment is normalized: NFC, runs of \\s become " ", then a per-character lowercase (Rust's
   char::to_lowercase: no final-sigma rule, so "ΣΑΣ" → "σασ", where Python's str.lower() would give "σας").
3. The CLIP split keeps the matches of
   <\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
   and drops what is between them (whitespace only).
4. The ByteLevel pre-tokenizer splits each piece again with GPT-2's pattern. That only changes a piece that spells a
   special token (from "<|EndOfText|>" after lowercasing): "<|", "endoftext", "|>". Every other piece is a letter run,
   one digit, a contraction or a punctuation run, which GPT-2's pattern keeps whole.

\\s, \\p{L} and \\p{N} are Oniguruma's Unicode classes: White_Space, categories L* and N*. Characters that Python's
unicodedata does not know yet (assigned in a newer Unicode than the interpreter's) count as punctuation here.
"""

from __future__ import annotations

import re
import unicodedata

from sing_core.text.bpe_vocab import END_OF_TEXT, START_OF_TEXT

SPECIAL_TOKENS = (START_OF_TEXT, END_OF_TEXT)
SPECIAL_TOKEN_PATTERN = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")  # the group keeps them
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")  # in the pattern's order: the first that fits wins
# Unicode's White_Space property (= Oniguruma's \s). Not str.isspace(): that also takes U+001C..U+001F.
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def is_letter(char: str) -> bool:
    """\\p{L}: general category Lu, Ll, Lt, Lm or Lo."""
    return unicodedata.category(char)[0] == "L"


def is_number(char: str) -> bool:
    """\\p{N}: general category Nd, Nl or No (digits, Ⅻ, ², ①, ½ ...)."""
    return unicodedata.category(char)[0] == "N"


def split_special_tokens(text: str) -> list[str]:
    """Cut the raw text at each <|startoftext|> / <|endoftext|>; the specials are kept as their own items."""
    return [part for part in SPECIAL_TOKEN_PATTERN.split(text) if part]


def normalize(segment: str) -> str:
    """NFC, then a per-character lowercase (the whitespace folding is left out: step 3 drops all whitespace)."""
    return "".join(char.lower() for char in unicodedata.normalize("NFC", segment))


def clip_pieces(text: str) -> list[str]:
    """The matches of CLIP's pre-tokenization pattern in `text` (already normalized), in order."""
    pieces, position, length = [], 0, len(text)
    while position < length:
        char = text[position]
        if char in WHITE_SPACE:
            position += 1
            continue
        end = position + 1
        special = next((t for t in SPECIAL_TOKENS if text.startswith(t, position)), None)
        contraction = next((c for c in CONTRACTIONS if text.startswith(c, position)), None) if char == "'" else None
        if special is not None:
            end = position + len(special)
        elif contraction is not None:
            end = position + len(contraction)
        elif is_letter(char):
            while end < length and is_letter(text[end]):
                end += 1
        elif not is_number(char):  # a punctuation run: anything but whitespace, letters and numbers
            while end < length and not (text[end] in WHITE_SPACE or is_letter(text[end]) or is_number(text[end])):
                end += 1
        pieces.append(text[position:end])
        position = end
    return pieces


def byte_level_pieces(piece: str) -> list[str]:
    """GPT-2's split inside one CLIP piece; only a spelled-out special token is cut (see the module docstring)."""
    if piece in SPECIAL_TOKENS:
        return ["<|", piece[2:-2], "|>"]
    return [piece]


def pre_tokenize(text: str) -> list[str | tuple[str]]:
    """Words for BPE, in order; a special token written in the raw text comes back as a 1-tuple (its own id)."""
    words: list[str | tuple[str]] = []
    for part in split_special_tokens(text):
        if part in SPECIAL_TOKENS:
            words.append((part,))
            continue
        for piece in clip_pieces(normalize(part)):
            words.extend(byte_level_pieces(piece))
    return words
