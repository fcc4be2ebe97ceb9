"""Our "!"-padded tokenizer (the text of One More Step's OpenCLIP modules) gives the ids of each webui's own SD-2
tokenizer, in the webui's interpreter (host_sd2_tokenizer.py): Forge's (SD-2.1's tokenizer files under transformers
4 with ftfy, where a "!" in the prompt is the pad token, id 0, as in diffusers and One More Step's reference) with the
default pipeline, and A1111's (open_clip's SimpleTokenizer, where it stays "!</w>") with OPEN_CLIP.

Forge needs FORGE_DIR (FORGE_PYTHON defaults to FORGE_DIR/venv/bin/python), A1111 WEBUI_DIR (WEBUI_PYTHON likewise);
each is skipped with the reason where its variable is unset. The prompts are tests/parity/text_prompts.PROMPTS (97
of them hold a "!") and a few more around "!".
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
HOSTS = {  # host → (its folder variable, its interpreter variable, ids of "hello!" padded)
    "forge": ("FORGE_DIR", "FORGE_PYTHON", [49406, 3306, 0, 49407, 0]),
    "a1111": ("WEBUI_DIR", "WEBUI_PYTHON", [49406, 3306, 256, 49407, 0]),
}
EXCLAMATIONS = ["hello!", "wow!!! great", "! a", "a!b", "<|endoftext|>!x", "!", "Ｆｕｌｌ！？", "(red car!:1.2)"]
# open_clip's own spellings of <|startoftext|> / <|endoftext|>, which only its pattern knows (IGNORECASE: ſ = s)
OPEN_CLIP_SPECIALS = ["<start_of_text> a <END_OF_TEXT>!", "<ſtart_of_text>", "&lt;end_of_text&gt; &amp;amp;"]
RUN_TIMEOUT = 600


def text_prompts():
    spec = importlib.util.spec_from_file_location("text_prompts", LIVE_DIR.parent / "parity" / "text_prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_exclamation_padded_ids_equal_the_webuis_sd2_tokenizer(host, tmp_path):
    dir_variable, python_variable, hello = HOSTS[host]
    if not os.environ.get(dir_variable):
        pytest.skip(f"{dir_variable} is not set: this test runs {host}'s SD-2 tokenizer in its interpreter")
    root = Path(os.environ[dir_variable]).expanduser()
    python = Path(os.environ.get(python_variable) or root / "venv" / "bin" / "python").expanduser()
    if not python.exists():
        pytest.fail(f"{python_variable}={python} does not exist: set {python_variable} to the webui's interpreter")
    module = text_prompts()
    prompts = module.PROMPTS + EXCLAMATIONS + OPEN_CLIP_SPECIALS
    (tmp_path / "prompts.json").write_text(json.dumps(prompts), encoding="utf-8")
    command = [str(python), str(LIVE_DIR / "host_sd2_tokenizer.py"), "--host", host, "--host-dir", str(root)]
    command += ["--prompts", str(tmp_path / "prompts.json"), "--out", str(tmp_path / "report.json")]
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"host_sd2_tokenizer.py failed in {python} (rc={done.returncode}):\n{done.stderr[-4000:]}")
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    mojibake, unexplained = [], []
    for prompt, ids in zip(prompts, report["prompts"], strict=True):
        if ids["ours"] == ids["host"]:
            continue
        (mojibake if ids["ours"] == ids["host_without_mojibake_repair"] else unexplained).append(prompt)
    print(
        f"{host}: {len(prompts)} prompts, {len(mojibake)} differ only by ftfy's mojibake repair; {report['versions']}"
    )
    assert unexplained == [], f"{host}: {len(unexplained)} prompts get other ids: {unexplained[:5]!r}"
    assert sorted(mojibake) == sorted(module.MOJIBAKE)
    assert report["prompts"][prompts.index("hello!")]["host"][:5] == hello
