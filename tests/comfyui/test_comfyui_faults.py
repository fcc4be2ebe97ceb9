"""ComfyUI under faults and bad input: module files replaced, truncated or deleted between prompts, an interrupt
during sampling, and bad values for each of the pack's inputs through POST /prompt. After each, ComfyUI keeps
serving and the next good prompt is right."""

from __future__ import annotations

import shutil
import time

import pytest
import torch
from comfy_client import PromptRefusedError
from comfy_live import read_probe
from graphs import txt2img
from test_comfyui_start import TOLERANCE, expected_start, first_rows

from sing_core.checkpoint import load_module

pytestmark = pytest.mark.comfyui

SWAP = "swap-sing"


def assert_serving(comfy, seed: int = 31):
    run = comfy.run(txt2img(seed=seed))
    assert run.succeeded, run.failure


def refused(comfy, graph) -> str:
    """The 400's node errors as one text (ComfyUI's own validation answer)."""
    with pytest.raises(PromptRefusedError) as error:
        comfy.queue(graph)
    body = error.value.body
    assert body.get("error"), body
    return str(body)


def replace_file(source, target) -> None:
    """As a user copying a new module over the old one: a new file under the old name."""
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    temporary.replace(target)


@pytest.fixture
def swap_module(modules):
    """models/singdiffusion/swap-sing.safetensors, a copy of the fitting module; removed afterwards."""
    path = modules.folder / f"{SWAP}.safetensors"
    shutil.copyfile(modules.path(modules.fitting), path)
    yield path
    path.unlink(missing_ok=True)


def start_error(record, module_path) -> float:
    return (first_rows(record) - expected_start(record, module_path, 0.0)).abs().max().item()


def test_a_module_replaced_on_disk_is_used_at_the_next_prompt(comfy, comfy_server, probe_dir, modules, swap_module):
    first = comfy.run(txt2img(module=SWAP, probe="swap-1"))
    assert first.succeeded, first.failure
    old = read_probe(probe_dir, "swap-1")
    assert start_error(old, modules.path(modules.fitting)) <= TOLERANCE
    since = comfy_server.log_size()
    replace_file(modules.path(modules.extra), swap_module)
    second = comfy.run(txt2img(module=SWAP, probe="swap-1"))  # the very same prompt
    assert second.succeeded, second.failure
    new = read_probe(probe_dir, "swap-1")
    assert start_error(new, modules.path(modules.extra)) <= TOLERANCE  # the new module's start, not the old one's
    assert (first_rows(new) - first_rows(old)).abs().max().item() > 10 * TOLERANCE
    assert f"[{load_module(swap_module).short_hash}]" in comfy_server.log_text(since=since)


def test_a_truncated_module_fails_the_prompt_naming_the_file(comfy, modules, swap_module):
    assert comfy.run(txt2img(module=SWAP, seed=3)).succeeded
    good = swap_module.read_bytes()
    swap_module.write_bytes(good[: len(good) // 2])
    run = comfy.run(txt2img(module=SWAP, seed=3))
    assert not run.succeeded
    assert run.error["node_type"] == "SingDiffusionModuleLoader"
    assert f"{SWAP}.safetensors" in run.error["exception_message"]
    assert "truncated or corrupt" in run.error["exception_message"]
    replace_file(modules.path(modules.fitting), swap_module)
    again = comfy.run(txt2img(module=SWAP, seed=3))
    assert again.succeeded, again.failure


def test_a_deleted_module_is_named_as_removed_and_leaves_the_list(comfy, swap_module):
    assert SWAP in comfy.object_info("SingDiffusionModuleLoader")["input"]["required"]["module_name"][0]
    assert comfy.run(txt2img(module=SWAP, seed=4)).succeeded
    swap_module.unlink()
    answer = refused(comfy, txt2img(module=SWAP, seed=4))
    assert "was removed" in answer
    assert "refresh" in answer
    assert SWAP not in comfy.object_info("SingDiffusionModuleLoader")["input"]["required"]["module_name"][0]
    assert_serving(comfy)


def test_an_interrupt_during_sampling_leaves_the_next_prompt_right(comfy, probe_dir, modules):
    before = comfy.run(txt2img(seed=41, probe="interrupt-before"))
    assert before.succeeded, before.failure
    long_prompt = comfy.queue(txt2img(seed=42, steps=200, probe="interrupt-long"))
    deadline = time.monotonic() + 120
    while not comfy.request("GET", "/queue")["queue_running"]:
        assert time.monotonic() < deadline, "the long prompt never started"
        time.sleep(0.1)
    time.sleep(1.0)  # into the sampling
    comfy.request("POST", "/interrupt", {})
    interrupted = comfy.wait(long_prompt)
    assert not interrupted.succeeded
    after = comfy.run(txt2img(seed=41, probe="interrupt-after"))
    assert after.succeeded, after.failure
    record = read_probe(probe_dir, "interrupt-after")
    assert start_error(record, modules.path(modules.fitting)) <= TOLERANCE
    assert torch.equal(record["first_input"], read_probe(probe_dir, "interrupt-before")["first_input"])
    assert all((a == b).all() for a, b in zip(comfy.images(after), comfy.images(before), strict=True))


def apply_inputs(**changes) -> dict:
    graph = txt2img(seed=51)
    graph["apply"]["inputs"].update(changes)
    return graph


@pytest.mark.parametrize(("case", "graph", "words"), [
    ("guidance_scale not a number", apply_inputs(guidance_scale="strong"), ("guidance_scale", "FLOAT")),
    ("guidance_scale above its maximum", apply_inputs(guidance_scale=1e6), ("guidance_scale", "bigger than max")),
    ("strength below its minimum", apply_inputs(strength=-1.0), ("strength", "smaller than min")),
    ("strength a list", apply_inputs(strength=[1, 2, 3]), ("strength",)),
    ("clip from a MODEL", apply_inputs(clip=["ckpt", 0]), ("clip", "mismatch")),
    ("positive from a LATENT", apply_inputs(positive=["latent", 0]), ("positive", "mismatch")),
    ("sing_module from a MODEL", apply_inputs(sing_module=["ckpt", 0]), ("sing_module", "mismatch")),
    ("module_name a number", None, ("module_name", "string")),
    ("module_name unknown", None, ("module_name", "is not installed")),
    ("module_name missing", None, ("module_name", "Required input is missing")),
])
def test_bad_input_is_refused_by_validation_and_comfyui_keeps_serving(comfy, case, graph, words):
    if graph is None:
        graph = txt2img(seed=52)
        loader = graph["loader"]["inputs"]
        if case == "module_name a number":
            loader["module_name"] = 5
        elif case == "module_name unknown":
            loader["module_name"] = "no-such-module"
        else:
            del loader["module_name"]
    answer = refused(comfy, graph)
    for word in words:
        assert word in answer, answer
    assert "TypeError" not in answer
    assert "Traceback" not in answer
    assert_serving(comfy)


def test_bad_input_found_at_execution_names_the_input(comfy):
    """module_prompt without the clip input passes validation (both are optional) and fails at execution, naming
    both; a number for module_prompt is ComfyUI's to convert (it reads "123")."""
    run = comfy.run(apply_inputs(module_prompt=123))
    assert not run.succeeded
    assert run.error["node_type"] == "SingDiffusionApply"
    assert "module_prompt" in run.error["exception_message"]
    assert "clip input" in run.error["exception_message"]
    assert_serving(comfy)
