"""The ids of a webui's own tokenizer for SD-2's OpenCLIP ViT-H and of ours with "!" padding, both computed in the
webui's interpreter.

    HOST_PYTHON tests/live/host_sd2_tokenizer.py --host forge|a1111 --host-dir DIR --prompts P.json --out R.json

- forge: the tokenizer/ folder of stabilityai/stable-diffusion-2-1 as the hub has it, which Forge ships
  (backend/huggingface/stabilityai/stable-diffusion-2-1/tokenizer) and loads with transformers 4's CLIPTokenizer
  (pad_token "!"); diffusers' SD-2 pipelines and One More Step's oms_tokenizer/ load the same. Ours: the default
  pipeline (transformers 4 + ftfy).
- a1111: open_clip's SimpleTokenizer (open-clip-torch 2.20, loaded from its file: the package's __init__ imports
  torchvision), which A1111's FrozenOpenCLIPEmbedderWithCustomWords calls, padding with 0. Ours: OPEN_CLIP.
Ids are taken for 77 tokens (BOS, 75, EOS, padding), once more with ftfy's mojibake repair off (which sing_core
leaves out).
"""

from __future__ import annotations

import argparse
import functools
import html
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FORGE_SD2_TOKENIZER = Path("backend/huggingface/stabilityai/stable-diffusion-2-1/tokenizer")
CONTEXT = 77


def forge_ids(forge: Path, prompts: list[str]):
    import ftfy
    from transformers import CLIPTokenizer

    from sing_core.text import SD2_PAD_TOKEN, ClipTokenizer

    folder = forge / FORGE_SD2_TOKENIZER
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    if getattr(tokenizer, "fix_text", None) is not ftfy.fix_text:
        raise SystemExit(f"{type(tokenizer).__name__} does not run ftfy.fix_text: not the tokenizer this test is for")

    def host_ids() -> list[list[int]]:
        return tokenizer(prompts, truncation=True, max_length=CONTEXT, padding="max_length")["input_ids"]

    host = host_ids()
    tokenizer.fix_text = functools.partial(ftfy.fix_text, fix_encoding=False)
    ours = ClipTokenizer.from_folder(folder, pad_token=SD2_PAD_TOKEN)
    return tokenizer.pad_token, host, host_ids(), [ours.encode(p) for p in prompts]


def a1111_ids(prompts: list[str]):
    import ftfy

    from sing_core.text import SD2_PAD_TOKEN, ClipTokenizer
    from sing_core.text.pretokenize import OPEN_CLIP

    package = Path(importlib.util.find_spec("open_clip").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("webui_open_clip_tokenizer", package / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    simple = module.SimpleTokenizer()

    def host_ids() -> list[list[int]]:  # A1111 pads its chunks with id_pad = 0 after <end_of_text>
        ids = []
        for prompt in prompts:
            tokens = [simple.encoder["<start_of_text>"], *simple.encode(prompt)[: CONTEXT - 2]]
            tokens.append(simple.encoder["<end_of_text>"])
            ids.append(tokens + [0] * (CONTEXT - len(tokens)))
        return ids

    host = host_ids()
    repair_off = functools.partial(ftfy.fix_text, fix_encoding=False)
    module.basic_clean = lambda text: html.unescape(html.unescape(repair_off(text))).strip()
    ours = ClipTokenizer.from_bpe_gz(
        package / "bpe_simple_vocab_16e6.txt.gz", pipeline=OPEN_CLIP, pad_token=SD2_PAD_TOKEN
    )
    return "id 0", host, host_ids(), [ours.encode(p) for p in prompts]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=("a1111", "forge"), required=True)
    parser.add_argument("--host-dir", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="a JSON list of prompts")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
    sys.path.insert(0, str(REPO_ROOT))
    if args.host == "forge":
        pad, host, no_repair, ours = forge_ids(args.host_dir.resolve(), prompts)
        packages = ("transformers", "ftfy")
    else:
        pad, host, no_repair, ours = a1111_ids(prompts)
        packages = ("open_clip_torch", "ftfy")
    report = {
        "pad_token": pad,
        "versions": {name: importlib.metadata.version(name) for name in packages},
        "prompts": [
            {"host": host[i], "host_without_mojibake_repair": no_repair[i], "ours": ours[i]}
            for i in range(len(prompts))
        ],
    }
    args.out.write_text(json.dumps(report, ensure_ascii=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
