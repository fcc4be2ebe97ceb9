"""The module's text side: SD-1.5's CLIP tokenizer and CLIP ViT-L/14 text encoder, in torch only.

The SingDiffusion module was trained on SD-1.5's text conditioning (77 tokens, last_hidden_state after the final
layer norm), whatever the host model is.
"""

from sing_core.text.bpe_vocab import BpeVocabulary, VocabularyError
from sing_core.text.clip_text import ClipTextConfig, ClipTextModel
from sing_core.text.encoder import ClipTextEncoder
from sing_core.text.pretokenize import TRANSFORMERS4_FTFY, TRANSFORMERS5
from sing_core.text.tensor_files import WeightsFileError
from sing_core.text.text_checkpoint import (
    MODULE_CONFIG_METADATA_KEY,
    MODULE_PREFIX,
    TextEncoderLoadError,
    load_text_encoder,
)
from sing_core.text.tokenizer import MAX_LENGTH, ClipTokenizer

__all__ = [
    "MAX_LENGTH",
    "MODULE_CONFIG_METADATA_KEY",
    "MODULE_PREFIX",
    "TRANSFORMERS4_FTFY",
    "TRANSFORMERS5",
    "BpeVocabulary",
    "ClipTextConfig",
    "ClipTextEncoder",
    "ClipTextModel",
    "ClipTokenizer",
    "TextEncoderLoadError",
    "VocabularyError",
    "WeightsFileError",
    "load_text_encoder",
]
