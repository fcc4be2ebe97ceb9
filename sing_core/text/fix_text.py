"""ftfy.fix_text as the webuis' CLIP tokenizer runs it (ftfy 6.3.1, default configuration), in the standard library.

Why: transformers 4's slow CLIPTokenizer (A1111 v1.10.1 has 4.30, Forge 4.46) calls `ftfy.fix_text` on every prompt
when ftfy imports, and both webuis install ftfy (open_clip and clip require it). The engine imports torch and
safetensors only, so the fixes that change the token ids of prompts are written here, in ftfy's order. ftfy cuts the
text after each "\\n" and repeats its steps on each line until the line stops changing:

    unescape_html          &amp; &quot; &#39; &#x201C; &eacute; &EACUTE; (html5 names that end in ";", their
                           all-caps forms, numeric references); not in a line that holds "<" nor in any line after
                           it (ftfy's "auto": that looks like real HTML)
    fix_c1_controls        U+0080..U+009F read as Windows-1252 (U+0085 → "…", U+0093 → "“")
    fix_latin_ligatures    ﬁ → fi, ﬂ → fl, ﬃ → ffi, Ĳ → IJ, ǅ → Dž ...
    fix_character_width    fullwidth ＡＢＣ１２３！ → ABC123!, halfwidth ｶﾀｶﾅ → カタカナ, U+3000 → " "
    uncurl_quotes          ‘ ’ ‚ ‛ ʼ → '   “ ” „ ‟ → "
    fix_line_breaks        \\r\\n, \\r, U+2028, U+2029, U+0085 → \\n
    fix_surrogates         a UTF-16 surrogate pair → its character, a lone surrogate → U+FFFD
    remove_terminal_escapes  ANSI escapes such as ESC[31m
    remove_control_chars   U+0000..U+0008, U+000B, U+000E..U+001F, U+007F, U+206A..U+206F, U+FEFF, U+FFF9..U+FFFC
    normalization          NFC (e + U+0301 → é)

Not reproduced: fix_encoding, ftfy's mojibake repair ("cafÃ©" → "café", "â€œhiâ€\\x9d" → "“hi”": text that went
through the wrong codec), with its sub-steps restore_byte_a0, replace_lossy_sequences and decode_inconsistent_utf8.
ftfy runs it only on text that its badness heuristic (ftfy/badness.py and chardata.py: several hundred lines of
character tables and patterns) judges garbled, which typed or pasted prompts are not. For a prompt that ftfy does
repair, our ids are those of the text as given, the webui's those of the repaired text; tests/parity shows that this
is the only difference from ftfy.fix_text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from html.entities import html5

MAX_DECODE_LENGTH = 1_000_000  # ftfy's max_decode_length: a longer line is fixed in pieces of this size

HTML_ENTITY = re.compile(r"&#?[0-9A-Za-z]{1,24};")
ANSI_ESCAPE = re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")  # \d: any Unicode digit, as in ftfy
SINGLE_QUOTES = re.compile("[\u02bc\u2018-\u201b]")
DOUBLE_QUOTES = re.compile("[\u201c-\u201f]")
SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
LIGATURES = str.maketrans(
    {
        "Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž", "ǆ": "dž",
        "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj",
        "ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st",
    }
)  # fmt: skip
CONTROL_CHARS = dict.fromkeys(
    [*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F, *range(0x206A, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFD)]
)


def _cp1252_or_self(code: int) -> str:
    # ftfy's "sloppy-windows-1252": the five bytes Windows-1252 leaves undefined stay as they are.
    try:
        return bytes([code]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(code)


C1_AS_WINDOWS_1252 = {code: _cp1252_or_self(code) for code in range(0x80, 0xA0)}
# The halfwidth and fullwidth forms block, each to its NFKC form where that differs, and the ideographic space.
CHARACTER_WIDTHS = {0x3000: " "} | {
    code: unicodedata.normalize("NFKC", chr(code))
    for code in range(0xFF01, 0xFFF0)
    if unicodedata.normalize("NFKC", chr(code)) != chr(code)
}


@lru_cache(maxsize=1)
def html_entities() -> dict[str, str]:
    """ftfy's entity table: the html5 names that end in ";", plus all-caps forms that are not entities themselves."""
    entities = {}
    for name, char in html5.items():
        if name.endswith(";"):
            entities["&" + name] = char
            if name == name.lower():
                upper = "&" + name.upper()
                if html.unescape(upper) == upper:
                    entities[upper] = char.upper()
    return entities


def _unescape_entity(match: re.Match[str]) -> str:
    entity = match.group(0)
    if entity in html_entities():
        return html_entities()[entity]
    if entity.startswith("&#"):
        unescaped = html.unescape(entity)
        return entity if ";" in unescaped else unescaped
    return entity


def _combine_surrogates(match: re.Match[str]) -> str:
    high, low = match.group(0)
    return chr(0x10000 + (ord(high) - 0xD800) * 0x400 + (ord(low) - 0xDC00))


def fix_line(text: str, unescape_html: bool) -> str:
    """ftfy's steps on one line, in its order, until the line stops changing (so "&amp;amp;" ends as "&")."""
    while True:
        before = text
        if unescape_html:
            text = HTML_ENTITY.sub(_unescape_entity, text)
        text = text.translate(C1_AS_WINDOWS_1252).translate(LIGATURES).translate(CHARACTER_WIDTHS)
        text = SINGLE_QUOTES.sub("'", DOUBLE_QUOTES.sub('"', text))
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
        text = text.replace("\u0085", "\n")
        text = SURROGATE.sub("\ufffd", SURROGATE_PAIR.sub(_combine_surrogates, text))
        text = ANSI_ESCAPE.sub("", text).translate(CONTROL_CHARS)
        text = unicodedata.normalize("NFC", text)
        if text == before:
            return text


def fix_text(text: str) -> str:
    """ftfy.fix_text(text) without the mojibake repair (see the module docstring)."""
    fixed, position, unescape_html = [], 0, True
    while position < len(text):
        end = text.find("\n", position) + 1 or len(text)
        end = min(end, position + MAX_DECODE_LENGTH)
        line = text[position:end]
        unescape_html = unescape_html and "<" not in line  # once off, off for the rest of the text, as in ftfy
        fixed.append(fix_line(line, unescape_html))
        position = end
    return "".join(fixed)
