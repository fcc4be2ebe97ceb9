"""CLIP's tokenizer: the ids the host's CLIPTokenizer gives (77 tokens, BOS + 75 + EOS, then padding: EOS for
SD-1.5's CLIP-L, "!" = id 0 for SD-2's OpenCLIP ViT-H, which reads the same vocabulary).

By default the ids of the webuis' own tokenizer, transformers 4's slow CLIPTokenizer with ftfy (A1111 v1.10.1,
Forge), for which ftfy's fixes are reproduced in sing_core.text.fix_text: curly quotes, ligatures, fullwidth forms,
HTML entities, control characters and line breaks, NFC. `pipeline=TRANSFORMERS5` gives transformers 5's ids instead
(no ftfy). How each cuts text into words is in sing_core.text.pretokenize; this module runs the BPE.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from sing_core.text.bpe_vocab import (
    END_OF_TEXT,
    END_OF_WORD,
    START_OF_TEXT,
    BpeVocabulary,
    VocabularyError,
    bytes_to_unicode,
    read_bpe_gz,
    read_tokenizer_folder,
)
from sing_core.text.pretokenize import OPEN_CLIP, PIPELINES, TRANSFORMERS4_FTFY, pre_tokenize
from sing_core.text.vocab_sources import BPE_GZ_NAME, hub_cache_dirs, hub_tokenizer_folders, package_bpe_gz_files

MAX_LENGTH = 77  # SD-1.x's context: <|startoftext|> + 75 tokens + <|endoftext|>
SD2_PAD_TOKEN = "!"  # id 0: SD-2's tokenizer/ (special_tokens_map.json) and open_clip pad with it
BPE_CACHE_SIZE = 1 << 16


class ClipTokenizer:
    """Byte-level BPE over CLIP's pre-tokenized words; `encode` pads/truncates like the SD-1.5 pipelines.

    `pipeline` names the host tokenizer whose text cleaning is reproduced (sing_core.text.pretokenize.PIPELINES).
    `pad_token` fills the ids after <|endoftext|>: <|endoftext|> for SD-1.x's CLIP-L, "!" (id 0) for SD-2's OpenCLIP
    ViT-H (SD2_PAD_TOKEN). A pad token that is not <|startoftext|>/<|endoftext|> is also cut out of the prompt as its
    own id, as transformers' CLIPTokenizer does with every special token: with "!" padding, "wow!" gives
    "wow" + id 0 (not "!</w>", 256), as diffusers' SD-2 pipelines and One More Step's reference tokenize; the
    OPEN_CLIP pipeline (A1111's SD-2 tokenizer) keeps it as text.
    """

    def __init__(
        self,
        vocabulary: BpeVocabulary,
        max_length: int = MAX_LENGTH,
        pipeline: str = TRANSFORMERS4_FTFY,
        pad_token: str = END_OF_TEXT,
    ):
        if max_length < 2:
            raise ValueError(f"max_length={max_length}: needs room for <|startoftext|> and <|endoftext|>.")
        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline={pipeline!r}: not a tokenizer pipeline; use one of {', '.join(PIPELINES)}.")
        self.pipeline = pipeline
        self.vocabulary = vocabulary.validate()
        self.max_length = max_length
        self.token_ids = vocabulary.token_ids
        self.merge_ranks = {pair: rank for rank, pair in enumerate(vocabulary.merges)}
        if pad_token not in self.token_ids:
            raise ValueError(f"pad_token={pad_token!r} is not in the vocabulary {vocabulary.source}.")
        self.pad_token = pad_token
        self.bos_id = self.token_ids[START_OF_TEXT]
        self.eos_id = self.token_ids[END_OF_TEXT]
        self.pad_id = self.token_ids[pad_token]
        # transformers registers the pad token as a special token, which its tokenizer cuts out of the text;
        # open_clip has no such thing (A1111 pads with 0 after tokenizing).
        is_special = pad_token in (START_OF_TEXT, END_OF_TEXT) or pipeline == OPEN_CLIP
        self.added_tokens = () if is_special else (pad_token,)
        self._byte_symbols = bytes_to_unicode()
        # One cache per tokenizer: a webui batch repeats the same words many times.
        self.word_ids = lru_cache(maxsize=BPE_CACHE_SIZE)(self._word_ids)

    @property
    def source(self) -> str:
        return self.vocabulary.source

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        max_length: int = MAX_LENGTH,
        pipeline: str = TRANSFORMERS4_FTFY,
        pad_token: str = END_OF_TEXT,
    ) -> ClipTokenizer:
        """A Hugging Face tokenizer folder (vocab.json + merges.txt, or tokenizer.json); its vocabulary only: the
        padding is `pad_token`, whatever the folder's special_tokens_map.json says."""
        return cls(read_tokenizer_folder(folder), max_length, pipeline, pad_token)

    @classmethod
    def from_bpe_gz(
        cls,
        path: str | Path,
        max_length: int = MAX_LENGTH,
        pipeline: str = TRANSFORMERS4_FTFY,
        pad_token: str = END_OF_TEXT,
    ) -> ClipTokenizer:
        """OpenAI's bpe_simple_vocab_16e6.txt.gz."""
        return cls(read_bpe_gz(path), max_length, pipeline, pad_token)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        max_length: int = MAX_LENGTH,
        pipeline: str = TRANSFORMERS4_FTFY,
        pad_token: str = END_OF_TEXT,
    ) -> ClipTokenizer:
        """A folder, a tokenizer.json or a .gz merge list, by what the path is."""
        path = Path(path)
        if path.is_dir():
            return cls.from_folder(path, max_length, pipeline, pad_token)
        if path.name.endswith(".gz") and path.is_file():
            return cls.from_bpe_gz(path, max_length, pipeline, pad_token)
        if path.name == "tokenizer.json" and path.is_file():
            return cls.from_folder(path.parent, max_length, pipeline, pad_token)
        raise VocabularyError(f"{path}: not a tokenizer folder, tokenizer.json or {BPE_GZ_NAME} (does it exist?).")

    @classmethod
    def find(
        cls,
        paths: Sequence[str | Path] = (),
        max_length: int = MAX_LENGTH,
        pipeline: str = TRANSFORMERS4_FTFY,
        pad_token: str = END_OF_TEXT,
    ) -> ClipTokenizer:
        """The first CLIP vocabulary found: `paths` in order, the Hugging Face hub cache, the clip/open_clip packages.

        Raises VocabularyError listing every place looked at when none has one.
        """
        candidates: list[Path] = [Path(p) for p in paths]
        candidates += hub_tokenizer_folders()
        candidates += package_bpe_gz_files()
        for candidate in candidates:
            if candidate.exists():
                return cls.from_path(candidate, max_length, pipeline, pad_token)
        looked = [str(Path(p)) for p in paths] + [
            f"{d} (snapshots of openai/clip-vit-large-patch14, SD-1.5, SD-2.x)" for d in hub_cache_dirs()
        ]
        looked.append(f"{BPE_GZ_NAME} in the installed 'open_clip' / 'clip' packages")
        raise VocabularyError(
            "No CLIP tokenizer vocabulary found. Looked in: " + "; ".join(looked) + ". Fix: `pip install "
            "openai-clip` (or open-clip-torch), or pass a folder with vocab.json and merges.txt (the tokenizer/ "
            "folder of SD-1.5 or openai/clip-vit-large-patch14)."
        )

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """BPE of one pre-tokenized word: its UTF-8 bytes as symbols, "</w>" on the last, lowest-rank merges first."""
        symbols = [self._byte_symbols[b] for b in word.encode("utf-8")]
        symbols[-1] += END_OF_WORD
        ranks = self.merge_ranks
        while len(symbols) > 1:
            pairs = {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}
            best = min(pairs, key=lambda pair: ranks.get(pair, len(ranks)))
            if best not in ranks:
                break
            merged, i = [], 0
            while i < len(symbols):  # every occurrence, left to right, without overlap
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(self.token_ids[s] for s in symbols)

    def tokenize(self, text: str) -> list[int]:
        """All token ids of `text`, without <|startoftext|>/<|endoftext|> around them and without truncation."""
        if not isinstance(text, str):
            raise TypeError(f"prompt must be a str, got {type(text).__name__}")
        ids: list[int] = []
        try:
            for word in pre_tokenize(text, self.pipeline, self.added_tokens):
                ids.extend((self.token_ids[word[0]],) if isinstance(word, tuple) else self.word_ids(word))
        except UnicodeEncodeError as error:  # only TRANSFORMERS5 keeps them: ftfy replaces lone surrogates
            raise ValueError(
                f"the prompt holds UTF-16 surrogates ({error.object[error.start : error.end]!r}), which are not text; "
                "transformers 5's tokenizer refuses them too. Send the characters themselves."
            ) from error
        return ids

    def encode(self, text: str) -> list[int]:
        """`max_length` ids: BOS, the first max_length - 2 tokens, EOS, then the pad id."""
        content = self.tokenize(text)[: self.max_length - 2]
        ids = [self.bos_id, *content, self.eos_id]
        return ids + [self.pad_id] * (self.max_length - len(ids))

    def __call__(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Token ids as a LongTensor [B, max_length] (a single prompt gives B = 1)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return torch.tensor([self.encode(p) for p in prompts], dtype=torch.long).reshape(len(prompts), self.max_length)
