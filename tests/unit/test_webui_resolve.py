"""Which values a generation uses and what an API request sent (sing_webui.resolve): script args positional or as
one dict, the checkpoint's preset, X/Y/Z values, the module by name or by default, and the 422s of bad args.

The webui's objects are stand-ins with only the attributes read (tests/unit/webui_stand_ins.py); presets and
module folders are the real sing_core ones. How the webui pads script args and calls these is proven by the live
tier (tests/live/test_preset_generations.py, test_singdiffusion.py, test_xyz.py)."""

import pytest
from webui_stand_ins import StandInProcessing, StandInRequest, StandInScript, StandInScriptRunner

from sing_core.args import FIELDS, ArgsError, SingArgs
from sing_core.kinds import ModuleKind
from sing_core.library import ModuleGoneError, ModuleLibrary, UnknownModuleError
from sing_core.presets import Preset
from sing_webui import preset_rules, resolve, rules

PANEL_DEFAULTS = SingArgs().as_positional()  # what the webui pads a request's args with: follow_preset on
PRESET = Preset("tiny-sd1.safetensors [0123456789]", "0123456789",
                {"enabled": True, "module": "preset-module", "guidance_scale": 3.0, "text_source": "module",
                 "strength": 0.8})


def follow_the_preset(args: SingArgs) -> SingArgs:
    return preset_rules.follow(args, PRESET, None)[0]


def no_preset(args: SingArgs) -> SingArgs:
    return args


def test_positional_script_args_in_field_order():
    args = resolve.effective_args([True, "m", 2.0, "host", False, 0.5], no_preset, {})
    assert args == SingArgs(enabled=True, module="m", guidance_scale=2.0, text_source="host", follow_preset=False,
                            strength=0.5)


def test_one_dict_then_the_webuis_padding():
    args = resolve.effective_args([{"enabled": True, "module": "m"}, *PANEL_DEFAULTS[1:]], no_preset, {})
    assert args == SingArgs(enabled=True, module="m")


def test_the_preset_replaces_the_panels_values_where_they_follow_it():
    assert resolve.effective_args(PANEL_DEFAULTS, follow_the_preset, {}) == SingArgs(
        enabled=True, module="preset-module", guidance_scale=3.0, text_source="module", strength=0.8)


def test_args_that_do_not_follow_keep_their_own_values():
    sent = [True, "mine", 0.0, "auto", False, 1.0]
    assert resolve.effective_args(sent, follow_the_preset, {}) == SingArgs(True, "mine", follow_preset=False)


def test_x_y_z_values_win_over_the_preset_and_explicit_args():
    p = StandInProcessing(singdiffusion_strength=1.5, singdiffusion_module="xyz-module")
    following = resolve.effective_args(PANEL_DEFAULTS, follow_the_preset, resolve.xyz_values(p))
    assert (following.module, following.strength, following.guidance_scale) == ("xyz-module", 1.5, 3.0)
    explicit = resolve.effective_args([True, "mine", 2.0, "auto", False, 1.0], follow_the_preset,
                                      resolve.xyz_values(StandInProcessing(singdiffusion_enabled=False)))
    assert explicit == SingArgs(False, "mine", 2.0, follow_preset=False)


def test_only_the_fields_with_an_axis_are_read_from_p():
    p = StandInProcessing(singdiffusion_enabled=True, singdiffusion_guidance_scale=4.0, singdiffusion_module="m",
                          singdiffusion_strength=0.5, singdiffusion_text_source="host",
                          singdiffusion_follow_preset=False)
    assert resolve.xyz_values(p) == {"enabled": True, "guidance_scale": 4.0, "module": "m", "strength": 0.5}
    assert resolve.xyz_values(StandInProcessing()) == {}


@pytest.mark.parametrize(("xyz", "says"), [
    ({"strength": 5.0}, "'strength' in the X/Y/Z plot must be between 0 and 2, got 5"),
    ({"guidance_scale": float("nan")}, "'guidance_scale' in the X/Y/Z plot must be a number"),
    ({"enabled": "yes"}, "'enabled' in the X/Y/Z plot must be true or false"),
])
def test_a_bad_x_y_z_value_is_a_422_naming_the_plot(xyz, says):
    with pytest.raises(ArgsError, match=says) as refused:
        resolve.effective_args(PANEL_DEFAULTS, no_preset, xyz)
    assert rules.failure_status(refused.value) == 422


@pytest.mark.parametrize(("script_args", "says"), [
    ([True, "m", "7"], "'guidance_scale' must be a number, got '7'"),
    ([*PANEL_DEFAULTS, True], "at most 7 positional arguments"),
    ([{"enabeld": True}], "unknown SingDiffusion argument"),
    ([True, "m", 0.0, "clip"], "'text_source' must be one of auto, module, host"),
])
def test_bad_script_args_are_a_422_naming_the_argument(script_args, says):
    with pytest.raises(ArgsError, match=says) as refused:
        resolve.effective_args(script_args, no_preset, {})
    assert rules.failure_status(refused.value) == 422


def test_guidance_0_follows_the_generations_cfg_scale():
    assert resolve.guidance_scale(SingArgs(guidance_scale=0.0), 7.5) == 7.5
    assert resolve.guidance_scale(SingArgs(guidance_scale=3.0), 7.5) == 3.0
    oms = ModuleKind("oms", "sdxl", "openclip_h")
    assert resolve.guidance_scale(SingArgs(guidance_scale=0.0), 7.5, oms) == 1.0  # OMS never follows the CFG scale
    assert resolve.guidance_scale(SingArgs(guidance_scale=1.5), 7.5, oms) == 1.5


# --- what an API request sent (Api.init_script_args' raw request) ---

@pytest.mark.parametrize("scripts", [None, {}, {"ADetailer": {"args": [True]}}, {"SingDiffusion": {}},
                                     {"SingDiffusion": {"args": None}}])
def test_a_request_without_singdiffusion_args_sent_none(scripts):
    assert resolve.request_args(StandInRequest(scripts)) is None


@pytest.mark.parametrize("title", ["SingDiffusion", "singdiffusion", "SINGDIFFUSION"])
def test_the_scripts_title_is_matched_as_the_webui_matches_it(title):
    assert resolve.request_args(StandInRequest({"other": {"args": [1]}, title: {"args": [True, "m"]}})) == [True, "m"]


def test_an_entry_that_is_not_an_object_is_a_422():
    with pytest.raises(ArgsError, match=r'alwayson_scripts\["singdiffusion"\] must be an object like') as refused:
        resolve.request_args(StandInRequest({"singdiffusion": [True, "m"]}))
    assert str(refused.value).startswith("SingDiffusion: ")
    assert rules.failure_status(refused.value) == 422


def unknown_module(name):
    raise UnknownModuleError(f"SingDiffusion module {name!r} is not installed (installed: tiny-sing)")


def must_not_look_up(name):
    raise AssertionError(f"looked up {name!r}")


def test_request_args_are_checked_and_the_module_looked_up_only_when_enabled():
    assert resolve.check_request([False, "not-installed"], must_not_look_up) == SingArgs(False, "not-installed")
    with pytest.raises(UnknownModuleError, match="'not-installed' is not installed") as refused:
        resolve.check_request([{"enabled": True, "module": "not-installed"}], unknown_module)
    assert rules.failure_status(refused.value) == 422
    assert resolve.check_request([], must_not_look_up) == SingArgs()


@pytest.mark.parametrize(("sent", "says"), [
    ({"enabled": True}, '"args" of SingDiffusion must be a list, got dict'),
    ([{"enabled": True}, True], "either one dict of named arguments or positional arguments, not both"),
    ([True, "m", 0.0, "auto", True, 1.0, "", 0], "at most 7 positional arguments"),
])
def test_malformed_request_args_are_a_422(sent, says):
    with pytest.raises(ArgsError, match=says) as refused:
        resolve.check_request(sent, must_not_look_up)
    assert rules.failure_status(refused.value) == 422


OTHER = ["other script's", 0]  # another AlwaysOn script's args before ours
START = len(OTHER)


def padded(sent: list) -> list:
    """Our part of the webui's script args for a positional request: what it sent, then the UI's defaults."""
    return [*OTHER, *sent, *PANEL_DEFAULTS[len(sent):]]


def ours(script_args: list, follow=follow_the_preset) -> SingArgs:
    return resolve.effective_args(script_args[START:], follow, {})


@pytest.mark.parametrize("sent", [[True], [True, "mine"], [True, "mine", 2.0], [True, "mine", 2.0, "host"]])
def test_positional_args_without_follow_preset_win_over_the_preset(sent):
    script_args = padded(sent)
    assert ours(script_args).module == "preset-module"  # what the padding alone would give
    resolve.explicit_follow_off(script_args, sent, START)
    assert script_args[:START] == OTHER
    assert ours(script_args) == SingArgs(*sent, follow_preset=False)


def test_positional_args_that_say_follow_preset_keep_it():
    sent = [True, "mine", 2.0, "auto", True]
    script_args = padded(sent)
    resolve.explicit_follow_off(script_args, sent, START)
    assert ours(script_args).module == "preset-module"


def test_a_dict_without_follow_preset_wins_over_the_preset_and_the_request_is_not_changed():
    sent = [{"enabled": True, "module": "mine"}]
    script_args = [*OTHER, sent[0], *PANEL_DEFAULTS[1:]]
    resolve.explicit_follow_off(script_args, sent, START)
    assert script_args[START] == {"enabled": True, "module": "mine", "follow_preset": False}
    assert sent[0] == {"enabled": True, "module": "mine"}
    assert ours(script_args) == SingArgs(True, "mine", follow_preset=False)


def test_a_dict_that_says_follow_preset_keeps_it():
    sent = [{"enabled": True, "follow_preset": True}]
    script_args = [*OTHER, sent[0], *PANEL_DEFAULTS[1:]]
    resolve.explicit_follow_off(script_args, sent, START)
    assert ours(script_args).module == "preset-module"


def test_an_empty_args_list_changes_nothing():
    script_args = padded([])
    resolve.explicit_follow_off(script_args, [], START)
    assert script_args == padded([])


def test_our_script_is_found_by_its_title():
    ours_script = StandInScript("SingDiffusion", 7)
    runner = StandInScriptRunner([StandInScript("ADetailer", 1), ours_script, StandInScript("Refiner", 9)])
    assert resolve.our_script(runner) is ours_script
    assert resolve.our_script(StandInScriptRunner([StandInScript("ADetailer", 1)])) is None


def test_the_follow_index_is_follow_presets_position():
    assert FIELDS[resolve.FOLLOW_INDEX].key == "follow_preset"


# --- the module a name means ---

def test_the_default_module_is_the_one_chosen_in_settings_else_the_first_installed():
    assert resolve.default_module_name("chosen", ["a", "b"]) == "chosen"
    assert resolve.default_module_name("removed", ["a"]) == "removed"  # an error later, never silently another
    assert resolve.default_module_name("", ["a", "b"]) == "a"
    assert resolve.default_module_name("", []) == ""


class Library:
    """A real ModuleLibrary over tmp_path, counting the rescans find_module asks for."""

    def __init__(self, root):
        self.root = root
        root.mkdir()
        self.library = ModuleLibrary([root]).refresh()
        self.rescans = 0

    def add(self, name, folder=None):
        path = (folder or self.root) / f"{name}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"m")
        return path

    def rescan(self):
        self.rescans += 1
        return self.library.refresh()

    def find(self, name):
        return resolve.find_module(name, self.library, self.rescan, [self.root])


def test_an_installed_module_is_found_without_a_rescan(tmp_path):
    library = Library(tmp_path / "SingDiffusion")
    library.add("tiny")
    library.library.refresh()
    assert library.find("tiny").name == "tiny"
    assert library.rescans == 0


def test_a_module_copied_in_while_the_webui_runs_is_found_by_one_rescan(tmp_path):
    library = Library(tmp_path / "SingDiffusion")
    library.add("late")
    assert library.find("late").name == "late"
    assert library.rescans == 1


def test_an_unknown_module_names_what_is_installed(tmp_path):
    library = Library(tmp_path / "SingDiffusion")
    library.add("tiny")
    with pytest.raises(UnknownModuleError, match=r"'other' is not installed \(installed: tiny\)"):
        library.find("other")
    assert library.rescans == 1


def test_no_module_at_all_says_where_modules_go(tmp_path):
    library = Library(tmp_path / "SingDiffusion")
    with pytest.raises(UnknownModuleError, match=r"no module is installed\. Put a module in .*SingDiffusion, or "
                                                 r"disable SingDiffusion"):
        library.find("")


def test_a_module_moved_within_the_folders_is_found_again_under_its_name(tmp_path):
    library = Library(tmp_path / "SingDiffusion")
    old = library.add("tiny")
    library.library.refresh()
    new = library.root / "sub" / "tiny.safetensors"
    new.parent.mkdir()
    old.rename(new)
    assert library.find("tiny").path == new
    assert library.rescans == 1


def test_a_module_removed_since_the_scan_says_it_is_gone(tmp_path):
    library = Library(tmp_path / "SingDiffusion")
    path = library.add("tiny")
    library.library.refresh()
    path.unlink()
    with pytest.raises(ModuleGoneError, match=r"'tiny' is gone: .* was removed or moved"):
        library.find("tiny")
