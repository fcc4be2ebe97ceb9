"""Our "!"-padded tokenizer (the text of One More Step's OpenCLIP modules) gives the ids of SD-2.1's own tokenizer
files under transformers 4 with ftfy, as Forge ships and loads them, in Forge's interpreter (host_sd2_tokenizer.py).

Needs FORGE_DIR (FORGE_PYTHON defaults to FORGE_DIR/venv/bin/python); skipped with the reason where it is unset. The
prompts are tests/parity/text_prompts.PROMPTS (97 of them hold a "!") and a few more around "!".
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

LIVE_DIR = Path(__file__).resolve().parent
SD2_TOKENIZER = Path("backend/huggingface/stabilityai/stable-diffusion-2-1/tokenizer")
EXCLAMATIONS = ["hello!", "wow!!! great", "! a", "a!b", "<|endoftext|>!x", "!", "Ｆｕｌｌ！？", "(red car!:1.2)"]
RUN_TIMEOUT = 600


def text_prompts():
    spec = importlib.util.spec_from_file_location("text_prompts", LIVE_DIR.parent / "parity" / "text_prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exclamation_padded_ids_equal_sd2_tokenizer_under_transformers4(tmp_path):
    if not os.environ.get("FORGE_DIR"):
        pytest.skip("FORGE_DIR is not set: this test runs SD-2.1's tokenizer files that Forge ships in its interpreter")
    forge = Path(os.environ["FORGE_DIR"]).expanduser()
    python = Path(os.environ.get("FORGE_PYTHON") or forge / "venv" / "bin" / "python").expanduser()
    folder = forge / SD2_TOKENIZER
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing: FORGE_DIR must be a Stable Diffusion WebUI Forge checkout")
    module = text_prompts()
    prompts = module.PROMPTS + EXCLAMATIONS
    (tmp_path / "prompts.json").write_text(json.dumps(prompts), encoding="utf-8")
    command = [str(python), str(LIVE_DIR / "host_sd2_tokenizer.py"), "--tokenizer-dir", str(folder)]
    command += ["--prompts", str(tmp_path / "prompts.json"), "--out", str(tmp_path / "report.json")]
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"host_sd2_tokenizer.py failed in {python} (rc={done.returncode}):\n{done.stderr[-4000:]}")
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["pad_token"] == "!"
    assert report["versions"]["transformers"].startswith("4."), report["versions"]
    mojibake, unexplained = [], []
    for prompt, ids in zip(prompts, report["prompts"], strict=True):
        if ids["ours"] == ids["host"]:
            continue
        (mojibake if ids["ours"] == ids["host_without_mojibake_repair"] else unexplained).append(prompt)
    print(f"{len(prompts)} prompts, {len(mojibake)} differ only by ftfy's mojibake repair; {report['versions']}")
    assert unexplained == [], f"{len(unexplained)} prompts get other ids: {unexplained[:5]!r}"
    assert sorted(mojibake) == sorted(module.MOJIBAKE)
    hello = report["prompts"][prompts.index("hello!")]["host"]
    assert hello[:5] == [49406, 3306, 0, 49407, 0]  # "!" written in the prompt is the pad token's id, 0
