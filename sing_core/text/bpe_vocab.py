"""CLIP's byte-level BPE vocabulary: read it from a Hugging Face tokenizer folder or from the bpe_simple_vocab gz.

Both sources describe the same 49408 tokens. The gz is OpenAI's merge list; CLIP's SimpleTokenizer (and Hugging Face's
vocab.json, which was converted from it) numbers the tokens as: the 256 byte symbols, the same with "</w>", one token
per merge in merge order, then <|startoftext|> (49406) and <|endoftext|> (49407).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
# CLIP keeps the first 49152 - 256 - 2 merges of the gz (its first line is a header): 48894 merges.
CLIP_MERGE_COUNT = 49152 - 256 - 2


class VocabularyError(ValueError):
    """A tokenizer vocabulary that is missing, unreadable or not a CLIP byte-level BPE vocabulary."""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable character table (bytes that print as themselves keep their char).

    The order matters: CLIP numbers its first 256 tokens in this dict's order, printable bytes first.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@dataclass(frozen=True)
class BpeVocabulary:
    """token → id, the merges in rank order, and where they came from (for error messages)."""

    token_ids: dict[str, int]
    merges: tuple[tuple[str, str], ...]
    source: str

    def validate(self) -> BpeVocabulary:
        """Refuse a vocabulary the byte-level BPE cannot run on, naming the first offending entries."""
        byte_symbols = list(bytes_to_unicode().values())
        missing = [s for s in (START_OF_TEXT, END_OF_TEXT) if s not in self.token_ids]
        missing += [s for s in byte_symbols + [s + END_OF_WORD for s in byte_symbols] if s not in self.token_ids]
        if missing:
            raise VocabularyError(
                f"{self.source}: not a CLIP byte-level BPE vocabulary; {len(missing)} required tokens are missing "
                f"(first: {missing[:5]}). Use the tokenizer of openai/clip-vit-large-patch14 or SD-1.5."
            )
        unknown = [a + b for a, b in self.merges if a + b not in self.token_ids]
        if unknown:
            raise VocabularyError(
                f"{self.source}: {len(unknown)} merge results are not in the vocabulary (first: {unknown[:5]}); "
                "vocab.json and merges.txt do not belong together."
            )
        return self


def clip_vocabulary_from_merges(merges: list[tuple[str, str]], source: str) -> BpeVocabulary:
    """The token numbering of CLIP's SimpleTokenizer, built from its merge list."""
    byte_symbols = list(bytes_to_unicode().values())
    tokens = [*byte_symbols, *(s + END_OF_WORD for s in byte_symbols), *(a + b for a, b in merges)]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    return BpeVocabulary(dict(zip(tokens, range(len(tokens)), strict=True)), tuple(merges), source).validate()


def _parse_merge_lines(lines: list[str], source: str) -> list[tuple[str, str]]:
    # The `tokenizers` reader: skip "#version" header lines, every other line is "left right".
    merges = []
    for number, line in enumerate(lines, start=1):
        if line.startswith("#version") or not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise VocabularyError(f"{source}: line {number} is not a merge 'left right': {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def read_bpe_gz(path: str | Path) -> BpeVocabulary:
    """Read OpenAI's bpe_simple_vocab_16e6.txt.gz (shipped by the `clip` and `open_clip` packages)."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            lines = stream.read().split("\n")
        if lines[-1] == "":  # the newline that ends the file
            lines.pop()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise VocabularyError(f"{path}: cannot read the BPE merges gz ({error}); reinstall the package.") from error
    # Line 0 is a header; SimpleTokenizer keeps lines[1 : 1 + 48894].
    wanted = lines[1 : 1 + CLIP_MERGE_COUNT]
    if len(wanted) < CLIP_MERGE_COUNT:
        raise VocabularyError(
            f"{path}: has {len(wanted)} merges, CLIP needs {CLIP_MERGE_COUNT}; the file is truncated or not CLIP's."
        )
    merges = []
    for number, line in enumerate(wanted, start=2):
        parts = line.split()
        if len(parts) != 2:
            raise VocabularyError(f"{path}: line {number} is not a merge 'left right': {line!r}")
        merges.append((parts[0], parts[1]))
    return clip_vocabulary_from_merges(merges, str(path))


def read_tokenizer_folder(folder: str | Path) -> BpeVocabulary:
    """Read a Hugging Face tokenizer folder: vocab.json + merges.txt, or else tokenizer.json."""
    folder = Path(folder)
    vocab_path, merges_path, json_path = folder / "vocab.json", folder / "merges.txt", folder / "tokenizer.json"
    try:
        if vocab_path.is_file() and merges_path.is_file():
            token_ids = json.loads(vocab_path.read_text(encoding="utf-8"))
            merges = _parse_merge_lines(merges_path.read_text(encoding="utf-8").split("\n"), str(merges_path))
            source = str(folder)
        elif json_path.is_file():
            model = json.loads(json_path.read_text(encoding="utf-8")).get("model", {})
            token_ids, raw_merges = model.get("vocab"), model.get("merges")
            if model.get("type") != "BPE" or not isinstance(token_ids, dict) or not isinstance(raw_merges, list):
                raise VocabularyError(f"{json_path}: not a BPE tokenizer.json (no model.vocab / model.merges).")
            merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in raw_merges]
            if any(len(m) != 2 for m in merges):
                raise VocabularyError(f"{json_path}: a merge is not a pair of tokens.")
            source = str(json_path)
        else:
            raise VocabularyError(
                f"{folder}: no vocab.json + merges.txt and no tokenizer.json; point to a Hugging Face tokenizer "
                "folder such as openai/clip-vit-large-patch14 or the tokenizer/ folder of SD-1.5."
            )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VocabularyError(f"{folder}: cannot read the tokenizer files ({error}).") from error
    if not isinstance(token_ids, dict) or not all(isinstance(i, int) for i in token_ids.values()):
        raise VocabularyError(f"{source}: the vocabulary is not a mapping token → integer id.")
    return BpeVocabulary(token_ids, tuple(merges), source).validate()


def write_tokenizer_folder(vocabulary: BpeVocabulary, folder: str | Path) -> Path:
    """Write vocab.json + merges.txt the way Hugging Face's BPE tokenizers save them (header line "#version: 0.2")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocabulary.token_ids, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in vocabulary.merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
