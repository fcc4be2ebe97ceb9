"""The module's text side: CLIP's tokenizer and text towers, in torch only.

The SingDiffusion module was trained on SD-1.5's text conditioning (CLIP ViT-L/14: 77 tokens, last_hidden_state
after the final layer norm), One More Step's SD-2.x/SDXL "openclip" modules on SD-2's (OpenCLIP ViT-H/14, "!"
padding), whatever the host model is. open_text_encoder(text_kind, path) gives either.
"""

from sing_core.text.bpe_vocab import BpeVocabulary, VocabularyError
from sing_core.text.clip_text import ClipTextConfig, ClipTextModel
from sing_core.text.encoder import ClipTextEncoder
from sing_core.text.find_encoder import find_text_encoder, text_encoder_width
from sing_core.text.open_encoder import open_text_encoder
from sing_core.text.pretokenize import OPEN_CLIP, TRANSFORMERS4_FTFY, TRANSFORMERS5
from sing_core.text.tensor_files import WeightsFileError
from sing_core.text.text_checkpoint import load_text_encoder
from sing_core.text.text_layouts import MODULE_CONFIG_METADATA_KEY, MODULE_PREFIX, TextEncoderLoadError
from sing_core.text.tokenizer import MAX_LENGTH, SD2_PAD_TOKEN, ClipTokenizer

__all__ = [
    "MAX_LENGTH",
    "MODULE_CONFIG_METADATA_KEY",
    "MODULE_PREFIX",
    "OPEN_CLIP",
    "SD2_PAD_TOKEN",
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
    "find_text_encoder",
    "load_text_encoder",
    "open_text_encoder",
    "text_encoder_width",
]
