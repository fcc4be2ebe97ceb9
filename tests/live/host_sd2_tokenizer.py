"""The ids of SD-2.1's own tokenizer (transformers 4 slow CLIPTokenizer with ftfy, pad_token "!") and of ours with
"!" padding, both computed in a webui's interpreter.

    HOST_PYTHON tests/live/host_sd2_tokenizer.py --tokenizer-dir DIR --prompts P.json --out R.json

DIR is the tokenizer/ folder of stabilityai/stable-diffusion-2-1 as the hub has it, which Forge ships
(backend/huggingface/stabilityai/stable-diffusion-2-1/tokenizer) and loads with CLIPTokenizer.from_pretrained; it is
what diffusers' SD-2 pipelines and One More Step's oms_tokenizer/ load too. Ids are taken as diffusers takes them:
77 tokens, max_length padding, truncation; once more with ftfy's mojibake repair off (which sing_core leaves out).
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer-dir", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="a JSON list of prompts")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
    import ftfy
    from transformers import CLIPTokenizer

    sys.path.insert(0, str(REPO_ROOT))
    from sing_core.text import SD2_PAD_TOKEN, ClipTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(args.tokenizer_dir)
    if getattr(tokenizer, "fix_text", None) is not ftfy.fix_text:
        raise SystemExit(f"{type(tokenizer).__name__} does not run ftfy.fix_text: not the tokenizer this test is for")
    ours = ClipTokenizer.from_folder(args.tokenizer_dir, pad_token=SD2_PAD_TOKEN)

    def host_ids() -> list[list[int]]:
        return tokenizer(prompts, truncation=True, max_length=77, padding="max_length")["input_ids"]

    host = host_ids()
    tokenizer.fix_text = functools.partial(ftfy.fix_text, fix_encoding=False)
    no_repair = host_ids()
    report = {
        "pad_token": tokenizer.pad_token,
        "versions": {name: importlib.metadata.version(name) for name in ("transformers", "ftfy")},
        "prompts": [
            {"host": host[i], "host_without_mojibake_repair": no_repair[i], "ours": ours.encode(prompt)}
            for i, prompt in enumerate(prompts)
        ],
    }
    args.out.write_text(json.dumps(report, ensure_ascii=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
