"""Bad input fails the prompt with a message that says what to do, and ComfyUI keeps serving."""

from __future__ import annotations

import pytest
from comfy_client import PromptRefusedError
from graphs import txt2img, with_model_node

pytestmark = pytest.mark.comfyui

TINY_SDXL = {"class_type": "SingTinySDXL", "inputs": {}}
FLOW = {"class_type": "ModelSamplingSD3", "inputs": {"model": ["ckpt", 0], "shift": 3.0}}


def assert_next_prompt_succeeds(comfy):
    run = comfy.run(txt2img(seed=21))
    assert run.succeeded, run.failure


def test_unknown_module_is_refused_with_the_installed_list(comfy, modules):
    with pytest.raises(PromptRefusedError) as refused:
        comfy.queue(txt2img(module="no-such-module"))
    details = " ".join(error["details"] for error in refused.value.body["node_errors"]["loader"]["errors"])
    assert "'no-such-module' is not installed" in details
    assert modules.fitting in details
    assert "singdiffusion" in details
    assert_next_prompt_succeeds(comfy)


def test_module_of_another_text_width_fails_the_prompt(comfy, modules):
    run = comfy.run(txt2img(module=modules.narrow))
    assert not run.succeeded
    message = run.error["exception_message"]
    assert "768 wide" in message
    assert "32-wide" in message
    assert "CLIP-L" in message
    assert_next_prompt_succeeds(comfy)


@pytest.mark.parametrize(("node", "words"), [
    (TINY_SDXL, ("SDXL", "the module predicts SD-1.x/2.x latents", "choose an SDXL module")),
    (FLOW, ("eps or v prediction", "ModelSamplingDiscreteFlow")),
])
def test_models_it_cannot_start_fail_the_prompt(comfy, node, words):
    graph = with_model_node(txt2img(), "other_model", node)
    run = comfy.run(graph)
    assert not run.succeeded
    assert run.error["node_type"] == "SingDiffusionApply"
    for word in words:
        assert word in run.error["exception_message"], run.error["exception_message"]
    assert_next_prompt_succeeds(comfy)
