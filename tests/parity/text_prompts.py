"""Prompts for the tokenizer comparisons: hand-picked hard cases, what ftfy rewrites, and seeded random ones.

The parity tier (tests/parity) and the live tier (tests/live/test_webui_tokenizer.py) use the same list, PROMPTS.
"""

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

# Text that ftfy.fix_text rewrites, as prompts carry it: pasted from word processors, web pages and chat apps.
FTFY_CASES = [
    "“a photo of a cat”, ‘studio lighting’, ‚low‘ „double“ ‟reversed” ‛single‛ ʼapostrophe",
    "don’t, it’s, we’re, they’ve, I’m, you’ll, she’d, rock’n’roll",
    "DON’T IT’S WE’RE THEY’VE I’M YOU’LL SHE’D",
    "ﬁsh ﬂower oﬀ eﬃcient waﬄe ﬅar ﬆyle Ĳssel ĳs ǅemal ǈubljana ǋegoš ǄŽ Ǳ ǲ ǳ ŉ",
    "ＡＢＣ ａｂｃ ０１２３ ！？＂＃＄％＆＇（）＊＋，－．／：；＜＝＞＠［＼］＾＿｀｛｜｝～　ideographic space",
    "ｶﾀｶﾅ ｱｲｳｴｵ ﾞﾟ ｰ ￠￡￢￣￤￥￦ ￨￩￪￫￬￭￮ ﾡﾢﾣ ＼(＾o＾)／",
    "&amp; &lt; &gt; &quot; &apos; &#39; &#x27; &#34; &nbsp; &copy; &reg; &trade; &hellip; &mdash; &ndash;",
    "caf&eacute; na&iuml;ve &Eacute;cole P&EACUTE;REZ BUNDESSTRA&SZLIG;E &ntilde; &Ntilde; &NTILDE; &nTILDE;",
    "&amp;amp; &amp;quot;nested&amp;quot; &amp;#39;twice&amp;#39; &amp;amp;amp;",
    "&#8220;numeric&#8221; &#x201C;hex&#x201D; &#128; &#0; &#x110000; &#55357; &#99999999; &#xZZ; &#;",
    "&notanentity; &amp no semicolon &AMP; &Amp; &aMp; & alone &&amp;& &#38;amp;",
    "&lt;lora:detail:0.8&gt; &lt;hypernet:x:1&gt; (masterpiece:1.2) &amp; best quality",
    "<b>bold</b> &amp; &quot;kept&quot; because of the tag",
    "first line &amp; unescaped\nsecond <i>html</i> &amp; kept\nthird &amp; kept too",
    "a < b &amp; c",
    "tag <lora:x:0.5> then &amp;",
    "1 &lt; 2\r\n3 &gt; 2\r\n&amp; done",
    "&amp;<|endoftext|>&amp; and <b>x</b><|endoftext|>&amp;",
    "line\r\nwindows\rold mac\u2028line sep\u2029para sep\x85next line\x0bvtab\x0cform feed",
    "c1 controls: \x80 euro \x91single\x92 \x93double\x94 \x96 dash \x97 \x85 ellipsis \x81 \x8d \x8f \x90 \x9d \x9f",
    "\x1b[31mred\x1b[0m \x1b[1;32;40mbold green\x1b[m \x1b[٣m arabic digit \x1b[x",
    "\ufeffbom at start and \ufeff inside, \u206a\u206b\u206f deprecated, \ufff9\ufffa\ufffb\ufffc annotation",
    "\x00\x01\x02\x07\x08 bells \x0e\x0f\x10\x1a\x1b\x1f \x7f controls kept: \t tab",
    "e\u0301 e\u0300 a\u030a o\u0308 n\u0303 c\u0327 i\u0307 u\u0308\u0301 \u1100\u1161\u11a8 \u0915\u093c",
    "A\u030a Ω K Å \u212b \u2126 \u212a (NFC turns the signs into letters)",
    "😀😃😄 👍🏻👍🏼👍🏽👍🏾👍🏿 👨‍👩‍👧‍👦 👩🏽‍🚀 🏳️‍🌈 🏴‍☠️ ❤️‍🔥 🇯🇵🇺🇸🇫🇷 1️⃣ #️⃣",
    "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f the flag of Wales (tag characters)",
    "a cat 🐱 in a hat 🎩, sunset 🌅 over the sea 🌊, ✨sparkles✨, ☀️ ☁️ ⛈️ ❄️",
    "\ud83d\ude00 paired surrogates, lone \ud800 and \udfff",
    "ΣΑΣ ΟΔΟΣ ΣΊΣΥΦΟΣ Σ ΑΣ. ΑΣ, ΑΣ1 (the final sigma of str.lower())",
    "İSTANBUL İzmir ẞ STRASSE ǅ ǲ Ǉ ᾼ ῌ ῼ ﬀ Ⅻ Ⓐ 𐐀 𞤀",
    "it'ſ ſtar <|ſtartoftext|> 'ſ <|STARTOFTEXT|> <|EndOfText|>",
    "\u0345 alone, a\u0345b, α\u0345 ι\u0345, !\u0345? (U+0345 under IGNORECASE)",
    "\u200b zero width \u200c\u200d joiners \u2060 word joiner \u00ad soft hyphen \u200e\u200f marks \u202a\u202e",
    (
        "masterpiece, best quality, ultra-detailed, 8k, photorealistic, (portrait of a woman:1.3), [[freckles]], "
        "(((detailed eyes))), soft lighting, bokeh, depth of field, shot on Canon EOS R5, 85mm f/1.2, golden hour, "
        "film grain, award winning photograph, trending on artstation, by Greg Rutkowski and Alphonse Mucha"
    ),
    "“solid black background”, a ﬁne ﬂower, ＦＵＬＬＷＩＤＴＨ, &amp; entities, don’t — and a very long tail: "
    + ", ".join(f"detail{i}" for i in range(90)),
    "ＢＲＥＡＫ BREAK\tAND\nAND\r\n(cat:1.2)\u3000(dog:0.8) [cat|dog] [cat:dog:0.4]",
    "日本語の「プロンプト」、全角ＡＢＣ と 半角ｶﾀｶﾅ。中文：“引号”和‘单引号’！한국어 ‘따옴표’",
    "Москва — «кавычки» „немецкие“ “английские” ’апостроф’",
    "تصوير «فوتوغرافي» ٠١٢٣ ‹مفرد› العربية\u200fالعربية",
    "\t\n\r \x85\u2028\u2029\u3000\xa0\u1680\u2000\u200a\u202f\u205f only whitespace and breaks",
    "\x1c\x1d\x1e\x1f information separators (str.isspace, not \\s)",
    "trailing nel\x85",
    "\x85leading nel",
]

# Mojibake: text decoded with the wrong codec. ftfy's fix_encoding repairs it; ours leaves it (sing_core.text.fix_text).
MOJIBAKE = [
    "cafÃ© au lait, naÃ¯ve",
    "â€œsmart quotesâ€\x9d from a cp1252 round trip",
    "SchÃ¶ne GrÃ¼ÃŸe aus MÃ¼nchen",
    "Ã¡rbol seÃ±or",
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


FTFY_PIECES = [
    *"“”‘’‚„‟‛ʼ«»",
    *"ﬀﬁﬂﬃﬄﬅﬆĲĳǅǈǋ",
    *(chr(c) for c in range(0xFF01, 0xFF5F)),
    *"ｱｶﾀﾅﾞﾟｰ\u3000",
    "&amp;",
    "&quot;",
    "&#39;",
    "&#x27;",
    "&lt;",
    "&gt;",
    "&nbsp;",
    "&eacute;",
    "&EACUTE;",
    "&amp;amp;",
    "&hellip;",
    "&#8217;",
    "&#x1F600;",
    "&bogus;",
    "&amp",
    "<",
    ">",
    "<b>",
    "</i>",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🏳️‍🌈",
    "❤️",
    "🇫🇷",
    "1️⃣",
    "✨",
    "\u0301",
    "\u0308",
    "\u0327",
    "\u0345",
    "e\u0301",
    "A\u030a",
    "\u212b",
    "\u2126",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "\x85",
    "\u2028",
    "\u2029",
    "\x0b",
    "\x0c",
    "\xa0",
    "\x1c",
    "\x80",
    "\x91",
    "\x92",
    "\x93",
    "\x94",
    "\x96",
    "\x81",
    "\x9d",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\ufeff",
    "\u200b",
    "\u200d",
    "\u206a",
    "\ufffc",
    "'s",
    "’s",
    "'ſ",
    "ſ",
    "Σ",
    "ΑΣ",
    "İ",
    "<|endoftext|>",
    "<|EndOfText|>",
    "<|startoftext|>",
]
PROMPT_WORDS = ("a", "photo", "of", "the", "cat", "dog", "castle", "portrait", "woman", "sunset", "neon", "masterpiece")


def ftfy_prompts(count: int, seed: int = 20240612) -> list[str]:
    """`count` prompts of ordinary words with what ftfy rewrites mixed in (quotes, ligatures, widths, entities ...)."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(2, 30)):
            word = rng.choice(PROMPT_WORDS)
            parts.append(rng.choice([word, word.upper(), word.title(), rng.choice(FTFY_PIECES) + word]))
            parts.append(rng.choice([" ", ", ", "", rng.choice(FTFY_PIECES), " " + rng.choice(FTFY_PIECES) + " "]))
        prompts.append("".join(parts))
    return prompts


PROMPTS = HAND_PICKED + FTFY_CASES + MOJIBAKE + random_prompts(240) + ftfy_prompts(200)
