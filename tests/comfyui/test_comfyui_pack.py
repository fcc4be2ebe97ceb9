"""The pack in a real ComfyUI: it loads, lists its modules, and changes nothing while unused."""

from __future__ import annotations

import numpy as np
import pytest
from comfy_live import PACK_NAME, REFERENCE_GRAPHS
from graphs import txt2img

from sing_core.args import FIELD_BY_KEY

pytestmark = pytest.mark.comfyui


def test_pack_loads_with_both_nodes(comfy, comfy_server):
    log = comfy_server.log_text()
    assert "IMPORT FAILED" not in log, log[-3000:]
    assert PACK_NAME in log.split("Import times for custom nodes")[-1]
    loader = comfy.object_info("SingDiffusionModuleLoader")
    apply = comfy.object_info("SingDiffusionApply")
    assert loader["output"] == ["SING_MODULE"]
    assert apply["output"] == ["MODEL"]
    assert set(apply["input"]["required"]) == {"model", "sing_module", "guidance_scale"}
    assert set(apply["input"]["optional"]) == {"positive", "negative", "strength", "clip", "module_prompt"}
    # from the one argument schema, as every host has them
    for key, options in (("strength", apply["input"]["optional"]["strength"][1]),
                         ("guidance_scale", apply["input"]["required"]["guidance_scale"][1])):
        field = FIELD_BY_KEY[key]
        assert (options["default"], options["min"], options["max"]) == (field.default, field.minimum, field.maximum)
        assert options["tooltip"] == field.help


def test_modules_from_the_model_folder_and_extra_model_paths(comfy, modules):
    choices = comfy.object_info("SingDiffusionModuleLoader")["input"]["required"]["module_name"][0]
    # release folders (SingDiffusion's and One More Step's) and our .safetensors in models/singdiffusion, and the
    # folder extra_model_paths.yaml adds
    assert set(choices) == {modules.fitting, modules.release, modules.narrow, modules.extra, modules.oms_xl,
                            modules.oms_xl_mixclip, modules.oms_sd}


@pytest.mark.parametrize("name", list(REFERENCE_GRAPHS))
def test_unused_pack_changes_nothing(comfy, plain_reference, name):
    run = comfy.run(txt2img(module=None, **REFERENCE_GRAPHS[name]))
    assert run.succeeded, run.failure
    images = comfy.images(run)
    assert len(images) == len(plain_reference[name])
    for with_pack, without in zip(images, plain_reference[name], strict=True):
        assert np.array_equal(with_pack, without)


@pytest.mark.parametrize("module_kind", ["fitting", "release", "extra"])
def test_every_module_layout_samples(comfy, modules, module_kind):
    run = comfy.run(txt2img(module=getattr(modules, module_kind), seed=9))
    assert run.succeeded, run.failure
    assert len(comfy.images(run)) == 1
