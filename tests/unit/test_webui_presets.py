"""Which preset a checkpoint has and what of it a generation or the panel follows (sing_webui.preset_rules).

The store is sing_core's real PresetStore in tmp_path; the webui's CheckpointInfo, its loaded model and p are
stand-ins with only the attributes read (tests/unit/webui_stand_ins.py). That the webui hands these the checkpoint
in use, and that a generation really follows its preset, is proven by the live tier
(tests/live/test_preset_generations.py, test_routes.py)."""

import pytest
import torch
from safetensors.torch import save_file
from webui_stand_ins import StandInCheckpointInfo, StandInModel, StandInProcessing

from sing_core.args import ArgsError, SingArgs
from sing_core.host_family import HostFamily
from sing_core.kinds import ModuleKind
from sing_core.library import UnknownModuleError
from sing_core.presets import PresetError, PresetStore
from sing_webui import preset_rules

SD1 = HostFamily("SD-1.x", 4)
SDXL = HostFamily("SDXL", 4)
CHANNELS = {"tiny-sing": 4, "wide-sing": 8, "oms-xl": 4}
KINDS = {"oms-xl": ModuleKind("oms", "sdxl", "openclip_h")}
TINY = StandInCheckpointInfo("tiny-sd1.safetensors", "0123456789", "/models/tiny-sd1.safetensors")
ENABLED = {"enabled": True, "module": "tiny-sing", "guidance_scale": 3.0, "text_source": "module", "strength": 0.8,
           "module_prompt": ""}


def module_fit(name: str) -> tuple[int, ModuleKind]:
    if name not in CHANNELS:
        raise UnknownModuleError(f"SingDiffusion module {name!r} is not installed")
    return CHANNELS[name], KINDS.get(name, ModuleKind())


def never(*_args):
    raise AssertionError("not needed for this decision")


@pytest.fixture
def store(tmp_path):
    store = PresetStore(tmp_path / "singdiffusion_presets.json")
    store.put(TINY.title, TINY.shorthash, ENABLED)
    return store


def test_a_checkpoints_preset_is_found_by_title(store):
    assert preset_rules.find(store, TINY).checkpoint == "tiny-sd1.safetensors [0123456789]"


def test_a_renamed_checkpoint_finds_its_preset_by_hash(store):
    renamed = StandInCheckpointInfo("renamed.safetensors", "0123456789")
    assert preset_rules.find(store, renamed).checkpoint == TINY.title


def test_a_checkpoint_not_hashed_yet_finds_its_preset_by_name(store):
    unhashed = StandInCheckpointInfo("tiny-sd1.safetensors", None)
    assert unhashed.title == "tiny-sd1.safetensors"
    assert preset_rules.find(store, unhashed).checkpoint == TINY.title


def test_another_checkpoint_has_no_preset(store):
    assert preset_rules.find(store, StandInCheckpointInfo("other.safetensors", "abcdef0123")) is None
    # hashed, with the same name but another hash: a different file, not the preset's
    assert preset_rules.find(store, StandInCheckpointInfo("tiny-sd1.safetensors", "abcdef0123")) is None


@pytest.mark.parametrize(("values", "family", "why"), [
    (ENABLED, SD1, None),
    ({**ENABLED, "enabled": False}, SDXL, None),  # a disabled preset refuses nothing
    (ENABLED, SDXL, "the module predicts SD-1.x/2.x latents and the checkpoint is SDXL (SDXL latents)"),
    ({**ENABLED, "module": "oms-xl"}, SDXL, None),  # an SDXL module's preset on an SDXL checkpoint
    ({**ENABLED, "module": "oms-xl"}, SD1, "the module predicts SDXL latents and the checkpoint is SD-1.x"),
    ({**ENABLED, "module": "wide-sing"}, SD1, "the checkpoint uses 4-channel latents and the module predicts 8"),
    ({**ENABLED, "module": "removed"}, SD1, None),  # the generation reports the module itself, naming the fix
    ({**ENABLED, "module": "removed"}, SDXL, None),  # SDXL is served: the generation decides on the module
    ({**ENABLED, "module": "removed"}, HostFamily("SDXL refiner", 4), "the checkpoint is SDXL refiner"),
])
def test_why_a_preset_cannot_be_followed_as_saved(store, values, family, why):
    preset = store.put("c", None, values)
    refusal = preset_rules.refusal(preset, family, module_fit)
    if why is None:
        assert refusal is None
    else:
        assert refusal.startswith(why)


def generation(info):
    return StandInProcessing(sd_model=StandInModel(info))


def test_a_generation_that_follows_gets_its_checkpoints_preset(store):
    args, note = preset_rules.apply(generation(TINY), SingArgs(), store, lambda _model: SD1, module_fit)
    assert args == SingArgs(True, "tiny-sing", 3.0, "module", True, 0.8)
    assert note is None


def test_a_generation_that_does_not_follow_keeps_its_args(store):
    explicit = SingArgs(True, "mine", follow_preset=False)
    assert preset_rules.apply(generation(TINY), explicit, store, never, never) == (explicit, None)


@pytest.mark.parametrize("info", [StandInCheckpointInfo("other.safetensors", "abcdef0123"), None])
def test_without_a_preset_the_args_stay(store, info):
    assert preset_rules.apply(generation(info), SingArgs(), store, never, never) == (SingArgs(), None)


def test_a_preset_is_never_followed_into_enabling_a_checkpoint_it_cannot_serve(store):
    read = []
    args, note = preset_rules.apply(generation(TINY), SingArgs(), store,
                                    lambda model: read.append(model) or SDXL, module_fit)
    assert args == SingArgs(False, "tiny-sing", 3.0, "module", True, 0.8)  # the rest of the preset is followed
    assert read == [StandInModel(TINY)]  # the family of the generation's own model
    assert note.startswith(f"the preset for {TINY.title} enables SingDiffusion, but that checkpoint cannot use it")
    assert note.endswith("the checkpoint is SDXL (SDXL latents); choose an SDXL module (e.g. One More Step's "
                         "oms_b_openclip_xl), or an SD-1.x/2.x checkpoint)")


def sdxl_file(path):
    keys = {"model.diffusion_model.out.2.weight": (4, 8, 3, 3),
            "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight": (3, 1)}
    save_file({key: torch.zeros(shape) for key, shape in keys.items()}, str(path))
    return path


def test_the_loaded_checkpoints_family_is_the_loaded_models_else_the_files(tmp_path):
    file = sdxl_file(tmp_path / "xl.safetensors")
    info = StandInCheckpointInfo("xl.safetensors", None, str(file))
    assert preset_rules.checkpoint_family(info, StandInModel(info), lambda _model: SD1) == SD1
    other = StandInModel(StandInCheckpointInfo("tiny.safetensors", None, str(tmp_path / "tiny.safetensors")))
    assert preset_rules.checkpoint_family(info, other, never) == SDXL
    assert preset_rules.checkpoint_family(info, None, never) == SDXL


def test_the_panel_shows_the_preset_it_follows(store):
    values, line = preset_rules.panel_values(TINY, store, lambda: SD1, module_fit)
    assert values == SingArgs(True, "tiny-sing", 3.0, "module", True, 0.8).preset()
    assert line == f"Following the preset for {TINY.title}."


def test_the_panel_says_when_there_is_no_preset(store):
    other = StandInCheckpointInfo("other.safetensors", "abcdef0123")
    assert preset_rules.panel_values(other, store, never, never) == (
        None, "No preset for other.safetensors [abcdef0123]: the panel's defaults.")


def test_the_panel_shows_a_refused_preset_disabled_and_says_why(store):
    values, line = preset_rules.panel_values(TINY, store, lambda: SDXL, module_fit)
    assert values["enabled"] is False
    assert values["module"] == "tiny-sing"
    assert "cannot use it: ignored (the module predicts SD-1.x/2.x latents and the checkpoint is SDXL" in line
    assert line.endswith(".")


def test_the_panel_follows_a_ckpt_not_loaded_yet_as_saved(store, tmp_path):
    ckpt = StandInCheckpointInfo("tiny-sd1.safetensors", "0123456789", str(tmp_path / "old.ckpt"))
    values, _ = preset_rules.panel_values(ckpt, store, lambda: preset_rules.checkpoint_family(ckpt, None, never),
                                          module_fit)
    assert values["enabled"] is True  # its family is unknown until it is loaded: the generation decides


def test_the_panel_shows_the_preset_else_its_defaults_and_the_default_module_for_an_empty_one():
    defaults = SingArgs(module="").preset()
    assert preset_rules.panel_shows(ENABLED, defaults, never) == ENABLED
    assert preset_rules.panel_shows(None, defaults, lambda: "settings-default") == {
        **defaults, "module": "settings-default"}
    assert preset_rules.panel_shows({**ENABLED, "module": ""}, defaults, lambda: "first")["module"] == "first"


def test_saving_checks_the_values_and_the_fit():
    checked = preset_rules.checked_preset(TINY.title, ENABLED, lambda: SD1, module_fit)
    assert checked.preset() == ENABLED
    with pytest.raises(PresetError, match=r"a preset cannot enable the module on tiny-sd1\.safetensors "
                                          r"\[0123456789\]: the module predicts SD-1\.x/2\.x latents and the "
                                          r"checkpoint is SDXL.*Save it with enabled false"):
        preset_rules.checked_preset(TINY.title, ENABLED, lambda: SDXL, module_fit)
    with pytest.raises(PresetError, match="uses 4-channel latents and the module predicts 8"):
        preset_rules.checked_preset(TINY.title, {**ENABLED, "module": "wide-sing"}, lambda: SD1, module_fit)


def test_a_disabled_preset_may_be_saved_anywhere_but_its_module_must_exist():
    disabled = {**ENABLED, "enabled": False}
    assert preset_rules.checked_preset("xl", disabled, never, module_fit).enabled is False
    with pytest.raises(UnknownModuleError, match="'removed' is not installed"):
        preset_rules.checked_preset("xl", {**disabled, "module": "removed"}, never, module_fit)
    assert preset_rules.checked_preset("xl", {"enabled": False}, never, never) == SingArgs()


@pytest.mark.parametrize(("values", "says"), [
    ({"follow_preset": False}, r"unknown SingDiffusion argument\(s\) 'follow_preset' in the preset for 'c'"),
    ({"strength": 3.0}, "'strength' in the preset for 'c' must be between 0 and 2"),
])
def test_saving_refuses_bad_values(values, says):
    with pytest.raises(ArgsError, match=says):
        preset_rules.checked_preset("c", values, never, never)


def test_the_title_a_preset_is_deleted_under(store):
    aliases = {"renamed.safetensors": StandInCheckpointInfo("renamed.safetensors", "0123456789")}
    assert preset_rules.stored_title(TINY.title, store, never) == TINY.title
    assert preset_rules.stored_title("renamed.safetensors", store, aliases.get) == TINY.title
    assert preset_rules.stored_title("other.safetensors", store, aliases.get) is None
