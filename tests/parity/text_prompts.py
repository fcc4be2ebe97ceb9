"""Prompts for the tokenizer comparisons: hand-picked hard cases plus seeded random ones over many scripts."""

from __future__ import annotations

import random
import sys
import unicodedata

HAND_PICKED = [
    "",
    " ",
    "   \t\n  ",
    "\u3000\u00a0\u2009",
    "a photo of a cat",
    "A PHOTO OF A CAT",
    "solid black background",
    "Monochrome line-art logo on a white background",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "café naïve résumé Ångström Straße",
    "e\u0301 a\u0308 o\u0302 combining marks n\u0303o",
    "z\u0336a\u0337l\u0338g\u0335o\u0334 text",
    "東京タワーの夜景, 北京烤鸭, 서울의 밤",
    "Привет, мир! Ёлка и ёжик",
    "مرحبا بالعالم ٠١٢٣٤٥٦٧٨٩",
    "שלום עולם",
    "नमस्ते दुनिया ०१२",
    "ΣΑΣ ΟΔΟΣ Σίσυφος",
    "İstanbul ıi IJ ǅ ǈ",
    "Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３！？",
    "ﬁne ﬂower ﬀ ﬃ Ĳ œuvre",
    "“curly quotes” and ‘single’ and „low“ and «guillemets»",
    "it’s don’t we’ll",
    "😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷 🧑🏿‍🚀",
    "👩🏻‍❤️‍💋‍👨🏼 a kiss",
    "2024 3.14159 1,000,000 ½ ¾ ² ³ ⁴ ₅",
    "Ⅻ Ⅳ ⅷ ① ⑳ ⒈ 𝟘𝟙𝟚",
    "x²+y²=z² ①②③ ½! Ⅻ. ٣٤ 12³",
    "𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝔉𝔯𝔞𝔨𝔱𝔲𝔯",
    "(masterpiece:1.2), best quality, ((ultra detailed))",
    "[a:b:0.5] [cat|dog] [[low weight]]",
    "<lora:x:0.8> <hypernet:foo:1> <lyco:bar>",
    "a castle AND a dragon AND a knight",
    "\\(escaped\\) \\[brackets\\]",
    "BREAK a BREAK b",
    "!!!??? ... --- ___ *** ~~~ ^^^ @@@ ### $$$ %%%",
    "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
    "it's they're we've I'm you'll he'd can't",
    "IT'S THEY'RE WE'VE I'M YOU'LL HE'D",
    "''s ''t '''re 'sun 'tis rock'n'roll",
    "&amp; &lt;3 &gt; &quot;hi&quot; &#39;x&#39; &nbsp;",
    '<b>html</b> <br/> <div class="x">',
    "a <|endoftext|> b",
    "<|startoftext|>start and end<|endoftext|>",
    "A <|ENDOFTEXT|> b <|StartOfText|>",
    "!!<|endoftext|>?? and !!<|EndOfText|>??",
    "e<|endoftext|>\u0301",
    "<|endoftext|><|endoftext|><|startoftext|>",
    "a" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["word"] * 100),
    ", ".join(f"tag{i}" for i in range(60)),
    "a, " * 80,
    "\x00 nul \x01 soh \x1c\x1d\x1e\x1f separators \x7f del \x85 nel",
    "zero\u200bwidth\u200cjoiners\u200d and \ufeffbom and \u2060wj",
    "\ue000 private use \U000f0000 plane 15",
    "\ufffd replacement \ufffe nonchar",
    "ǅungla ǈ ǋ titlecase",
    "ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ ligatures",
    "Ω Å K ℃ ℉ № ™ ℠",
    "한글 조합 가각갂",
    "ᄀ\u1161ᆨ conjoining jamo",
    "รูปภาพ ของ แมว",
    "ཀ་ཁ་ག tibetan",
    "ꙮ many-eyed",
    "𒀀𒀁 cuneiform 𓀀 hieroglyph",
    "tab\tseparated\tvalues",
]

# Code points the interpreter's unicodedata does not know are left out: `tokenizers` (Oniguruma) has a newer Unicode
# and calls some of them letters; ours then calls them punctuation (see sing_core.text.pretokenize).
SURROGATES = range(0xD800, 0xE000)


def _assigned_code_points() -> list[int]:
    return [c for c in range(sys.maxunicode + 1) if c not in SURROGATES and unicodedata.category(chr(c)) != "Cn"]


def random_prompts(count: int, seed: int = 20240311) -> list[str]:
    """`count` prompts mixing words, digits, punctuation, whitespace of every kind and code points of all planes."""
    rng = random.Random(seed)
    assigned = _assigned_code_points()
    bmp = [c for c in assigned if c < 0x10000]
    numeric = [c for c in assigned if unicodedata.category(chr(c)) in {"Nd", "Nl", "No"}]
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    pieces = [
        lambda: "".join(rng.choice(letters) for _ in range(rng.randint(1, 9))),
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 8))),
        lambda: "".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") for _ in range(rng.randint(1, 4))),
        lambda: rng.choice(["'s", "'T", "'re", "'VE", "'m", "'ll", "'d", "'", "''", "'x"]),
        lambda: rng.choice(["<|endoftext|>", "<|startoftext|>", "<|EndOfText|>", "<|endoftext", "|>"]),
        lambda: "".join(chr(rng.choice(bmp)) for _ in range(rng.randint(1, 6))),
        lambda: "".join(chr(rng.choice(assigned)) for _ in range(rng.randint(1, 4))),
        lambda: "".join(chr(rng.choice(numeric)) + rng.choice(["", ".", "!", "a"]) for _ in range(rng.randint(1, 5))),
        lambda: rng.choice(["\u0301", "\u0308", "\u200d", "\ufe0f", "\U0001f3fd", "\u3099", "\u0345"]),
    ]
    separators = [" ", "", "  ", "\t", "\n", "\u3000", "\xa0", "\x1c", "\u2028", ", "]
    prompts = []
    for _ in range(count):
        parts = [rng.choice(pieces)() for _ in range(rng.randint(1, 14))]
        prompts.append("".join(part + rng.choice(separators) for part in parts))
    return prompts
