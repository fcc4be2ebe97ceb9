"""The token ids of a webui's own CLIP tokenizer and of ours, both computed in the webui's interpreter.

    HOST_PYTHON tests/live/host_tokenizer.py --host a1111|forge --host-dir DIR --work-dir TMP
        --prompts P.json --out R.json

The tokenizer is the object the webui itself builds for SD-1.x:
- a1111: ldm's FrozenCLIPEmbedder(version=folder), the cond_stage_model class of configs/v1-inference.yaml, whose
  `.tokenizer` is `CLIPTokenizer.from_pretrained(version)`. The folder holds what the hub's
  openai/clip-vit-large-patch14 holds for it: vocab.json + merges.txt (from the webui's own `clip` package, OpenAI's
  vocabulary), its tokenizer_config.json and special_tokens_map.json, and a tiny random CLIPTextModel so that the
  constructor runs without a download.
- forge: backend.loader.load_huggingface_component for the "tokenizer" entry of the SD-1.5 model_index.json that Forge
  ships (backend/huggingface/runwayml/stable-diffusion-v1-5), with those shipped tokenizer files.
Each is called as the webui's prompt encoder calls it (modules/sd_hijack_clip.py, backend/text_processing/
classic_engine.py: truncation=False, add_special_tokens=False) and as FrozenCLIPEmbedder.forward and the reference
pipeline do (77 tokens, max_length padding, truncation). The same tokenizer with ftfy's mojibake repair turned off gives
the ids our fix_text aims at for the one class of text it leaves alone.

Writes R.json: versions, and per prompt the ids of each (the webuis print their own lines to stdout).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import unicodedata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# tokenizer_config.json and special_tokens_map.json of openai/clip-vit-large-patch14 (what A1111 loads for SD-1.x).
SPECIAL = {"lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
TOKENIZER_CONFIG = {
    "unk_token": {"__type": "AddedToken", "content": "<|endoftext|>", **SPECIAL},
    "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", **SPECIAL},
    "eos_token": {"__type": "AddedToken", "content": "<|endoftext|>", **SPECIAL},
    "pad_token": "<|endoftext|>",
    "add_prefix_space": False,
    "errors": "replace",
    "do_lower_case": True,
    "name_or_path": "openai/clip-vit-base-patch32",
    "model_max_length": 77,
    "special_tokens_map_file": "./special_tokens_map.json",
    "tokenizer_class": "CLIPTokenizer",
}
SPECIAL_TOKENS_MAP = {
    "bos_token": {"content": "<|startoftext|>", **SPECIAL},
    "eos_token": {"content": "<|endoftext|>", **SPECIAL},
    "unk_token": {"content": "<|endoftext|>", **SPECIAL},
    "pad_token": "<|endoftext|>",
}


def openai_clip_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The webui's `clip` package's SimpleTokenizer (loaded from its file: clip/__init__ imports torchvision)."""
    package = Path(importlib.util.find_spec("clip").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("webui_clip_simple_tokenizer", package / "simple_tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    simple = module.SimpleTokenizer(str(package / "bpe_simple_vocab_16e6.txt.gz"))
    return simple.encoder, sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)


def a1111_tokenizer(webui: Path, work: Path):
    sys.path.insert(0, str(webui))
    os.chdir(webui)
    sys.argv = sys.argv[:1]  # the webui parses its launch flags at import
    import modules.paths  # noqa: F401  (puts the webui's repositories/ on sys.path, as launch does)
    from ldm.modules.encoders.modules import FrozenCLIPEmbedder
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = work / "clip-vit-large-patch14"
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = openai_clip_vocabulary()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merge_lines = ["#version: 0.2", *(" ".join(pair) for pair in merges)]
    (folder / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS_MAP), encoding="utf-8")
    tiny = CLIPTextConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2)
    CLIPTextModel(tiny).save_pretrained(folder, safe_serialization=True)  # the webui refuses a .bin it cannot vet
    return FrozenCLIPEmbedder(version=str(folder), device="cpu").tokenizer, folder


def forge_tokenizer(forge: Path):
    sys.path.insert(0, str(forge))
    os.chdir(forge)
    sys.argv = [sys.argv[0], "--always-cpu"]  # backend.memory_management reads the launch flags at import
    import modules.paths  # noqa: F401  (Forge's repositories/ and packages_3rdparty/ on sys.path)
    from backend import loader

    repo = Path(loader.__file__).parent / "huggingface" / "runwayml" / "stable-diffusion-v1-5"
    library, class_name = json.loads((repo / "model_index.json").read_text(encoding="utf-8"))["tokenizer"]
    tokenizer = loader.load_huggingface_component(None, "tokenizer", library, class_name, str(repo), None)
    return tokenizer, repo / "tokenizer"


def unknown_letters_or_digits(prompt: str) -> list[str]:
    """Characters this interpreter's Unicode does not know but `regex` calls letters or digits (see pretokenize)."""
    import regex

    return [c for c in prompt if unicodedata.category(c) == "Cn" and regex.match(r"[\p{L}\p{N}]", c)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=("a1111", "forge"), required=True)
    parser.add_argument("--host-dir", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="a JSON list of prompts")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
    out = args.out.resolve()
    if args.host == "a1111":
        tokenizer, folder = a1111_tokenizer(args.host_dir.resolve(), args.work_dir.resolve())
    else:
        tokenizer, folder = forge_tokenizer(args.host_dir.resolve())
    import ftfy

    sys.path.insert(0, str(REPO_ROOT))
    from sing_core.text import ClipTokenizer

    if getattr(tokenizer, "fix_text", None) is not ftfy.fix_text:
        raise SystemExit(f"{type(tokenizer).__name__} does not run ftfy.fix_text: not the tokenizer this test is for")
    ours = ClipTokenizer.from_folder(folder)

    def host_ids() -> tuple[list[list[int]], list[list[int]]]:
        unpadded = tokenizer(prompts, truncation=False, add_special_tokens=False)["input_ids"]
        padded = tokenizer(prompts, truncation=True, max_length=77, padding="max_length")["input_ids"]
        return unpadded, padded

    host, host_padded = host_ids()
    tokenizer.fix_text = functools.partial(ftfy.fix_text, fix_encoding=False)
    no_repair, no_repair_padded = host_ids()
    report = {
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
        "tokenizer": f"{type(tokenizer).__module__}.{type(tokenizer).__name__}",
        "folder": str(folder),
        "versions": {name: importlib.metadata.version(name) for name in ("transformers", "ftfy", "regex")},
        "prompts": [
            {
                "host": host[i],
                "host_padded": host_padded[i],
                "host_without_mojibake_repair": no_repair[i],
                "host_padded_without_mojibake_repair": no_repair_padded[i],
                "ours": ours.tokenize(prompt),
                "ours_padded": ours.encode(prompt),
                "unknown_letters_or_digits": unknown_letters_or_digits(prompt),
            }
            for i, prompt in enumerate(prompts)
        ],
    }
    out.write_text(json.dumps(report, ensure_ascii=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
