"""Our CLIP tokenizer gives the token ids of the webui's own tokenizer, both run in the webui's own interpreter.

No server is started: host_tokenizer.py (beside this file) builds the tokenizer object the webui builds for SD-1.x
(A1111: ldm's FrozenCLIPEmbedder; Forge: backend.loader with the SD-1.5 files it ships), calls it as the webui's
prompt encoder does, and runs sing_core's tokenizer in the same interpreter, where the extension runs. The prompts are
tests/parity/text_prompts.PROMPTS (hand-picked cases, what ftfy rewrites, mojibake, seeded random text).

A1111 needs WEBUI_DIR (WEBUI_PYTHON defaults to WEBUI_DIR/venv/bin/python); Forge needs FORGE_DIR (FORGE_PYTHON
defaults to FORGE_DIR/venv/bin/python). Each is skipped, with the reason, where its variable is unset (the live
tier runs its `live` tests against the webui WEBUI_DIR or FORGE_DIR names; this one takes each it is given).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from sing_core.text import TRANSFORMERS5, ClipTokenizer

pytestmark = pytest.mark.live

LIVE_DIR = Path(__file__).resolve().parent
HOSTS = {  # host → (its folder variable, its interpreter variable, what it is)
    "a1111": ("WEBUI_DIR", "WEBUI_PYTHON", "an AUTOMATIC1111 v1.10.1 checkout"),
    "forge": ("FORGE_DIR", "FORGE_PYTHON", "a Stable Diffusion WebUI Forge checkout"),
}
MIN_PROMPTS = 300
RUN_TIMEOUT = 600


def load_text_prompts():
    spec = importlib.util.spec_from_file_location("text_prompts", LIVE_DIR.parent / "parity" / "text_prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEXT_PROMPTS = load_text_prompts()


@pytest.fixture(scope="module", params=sorted(HOSTS))
def host_report(request, tmp_path_factory):
    """host_tokenizer.py's report for this host, with the prompts it was given."""
    dir_variable, python_variable, what = HOSTS[request.param]
    if not os.environ.get(dir_variable):
        pytest.skip(
            f"{dir_variable} is not set: this test runs the tokenizer of {what} in its interpreter "
            f"({dir_variable}=/path/to/webui, {python_variable} defaults to {dir_variable}/venv/bin/python)"
        )
    root = Path(os.environ[dir_variable]).expanduser()
    python = Path(os.environ.get(python_variable) or root / "venv" / "bin" / "python").expanduser()
    if not python.exists():
        pytest.fail(f"{python_variable}={python} does not exist: set {python_variable} to the webui's interpreter")
    work = tmp_path_factory.mktemp(f"{request.param}_tokenizer")
    prompts = TEXT_PROMPTS.PROMPTS
    (work / "prompts.json").write_text(json.dumps(prompts), encoding="utf-8")
    command = [
        str(python),
        str(LIVE_DIR / "host_tokenizer.py"),
        "--host",
        request.param,
        "--host-dir",
        str(root),
        "--work-dir",
        str(work),
        "--prompts",
        str(work / "prompts.json"),
        "--out",
        str(work / "report.json"),
    ]
    # Nothing is written into the host's tree (no .pyc files) and nothing is downloaded.
    env = os.environ | {
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"host_tokenizer.py failed in {python} (rc={done.returncode}):\n{done.stderr[-4000:]}")
    report = json.loads((work / "report.json").read_text(encoding="utf-8"))
    assert len(report["prompts"]) == len(prompts)
    return request.param, prompts, report


def compare(prompts, report, ours_key, host_key):
    """Each prompt where ours differs from the host, sorted by the one explanation this test accepts, or none."""
    mojibake, newer_unicode, unexplained = [], [], []
    for prompt, ids in zip(prompts, report["prompts"], strict=True):
        if ids[ours_key] == ids[host_key]:
            continue
        if ids[ours_key] == ids[f"{host_key}_without_mojibake_repair"]:
            mojibake.append(prompt)  # ftfy's fix_encoding, which sing_core.text.fix_text leaves out
        elif ids["unknown_letters_or_digits"]:
            newer_unicode.append(prompt)  # letters/digits newer than the interpreter's Unicode (see pretokenize)
        else:
            unexplained.append(prompt)
    return mojibake, newer_unicode, unexplained


def test_the_webui_tokenizer_is_transformers_4_slow_clip_with_ftfy(host_report):
    host, _, report = host_report
    assert report["tokenizer"] == "transformers.models.clip.tokenization_clip.CLIPTokenizer"
    assert report["versions"]["transformers"].startswith("4."), report["versions"]
    assert report["versions"]["ftfy"].startswith("6."), report["versions"]
    print(f"{host}: Python {report['python']}, Unicode {report['unicode']}, {report['versions']}")


@pytest.mark.parametrize(("ours_key", "host_key"), [("ours", "host"), ("ours_padded", "host_padded")])
def test_ids_equal_the_webui_tokenizer_except_mojibake_repair(host_report, ours_key, host_key):
    """`host`: tokenizer(prompts, truncation=False, add_special_tokens=False), as the prompt encoder calls it;
    `host_padded`: 77 tokens, max_length padding, truncation, as FrozenCLIPEmbedder.forward and diffusers call it."""
    host, prompts, report = host_report
    mojibake, newer_unicode, unexplained = compare(prompts, report, ours_key, host_key)
    compared = len(prompts) - len(newer_unicode)
    equal = compared - len(mojibake) - len(unexplained)
    print(
        f"{host} {host_key}: {len(prompts)} prompts, {equal} equal, {len(mojibake)} differ only by ftfy's mojibake "
        f"repair, {len(newer_unicode)} hold letters newer than the interpreter's Unicode"
    )
    assert unexplained == [], f"{host}: {len(unexplained)} prompts get other ids than the webui's: {unexplained[:5]!r}"
    assert compared >= MIN_PROMPTS
    # The one class we leave out is exercised, and nothing but the mojibake prompts falls into it.
    assert sorted(mojibake) == sorted(TEXT_PROMPTS.MOJIBAKE)


def test_the_webui_cleaning_changes_many_of_the_prompts_compared(host_report):
    """The comparison is not won on plain text: for many prompts, most of FTFY_CASES among them, the webui's ids differ
    from those of the text as transformers 5 cuts it (no ftfy, no str.lower(), no IGNORECASE). FTFY_CASES also holds
    text that both leave alone (emoji, NFC, HTML tags that stop the unescaping)."""
    host, prompts, report = host_report
    raw = ClipTokenizer.from_folder(report["folder"], pipeline=TRANSFORMERS5)

    def raw_ids(prompt):
        try:
            return raw.tokenize(prompt)
        except ValueError:  # lone surrogates, which ftfy replaces and transformers 5 refuses
            return None

    changed = [p for p, ids in zip(prompts, report["prompts"], strict=True) if raw_ids(p) != ids["host"]]
    changed_cases = [p for p in TEXT_PROMPTS.FTFY_CASES if p in changed]
    print(f"{host}: {len(changed)} of {len(prompts)} prompts, {len(changed_cases)} of the FTFY_CASES, have other ids")
    assert len(changed) >= 300
    assert len(changed_cases) >= 30


def test_ours_here_equal_ours_in_the_webuis_interpreter(host_report):
    """The parity tier's results carry over: sing_core gives the same ids in the webui's interpreter as here."""
    host, prompts, report = host_report
    if report["unicode"] != unicodedata.unidata_version:
        pytest.skip(
            f"{host} has Unicode {report['unicode']}, this interpreter {unicodedata.unidata_version}: "
            "NFC and lower() of newer characters may differ"
        )
    ours = ClipTokenizer.from_folder(report["folder"])
    differing = [p for p, ids in zip(prompts, report["prompts"], strict=True) if ours.tokenize(p) != ids["ours"]]
    assert differing == [], f"{host}: {len(differing)} prompts, first {differing[:3]!r} ({sys.version.split()[0]})"
