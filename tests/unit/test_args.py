import math

import pytest

from sing_core.args import (
    FIELDS,
    ArgsError,
    SingArgs,
    from_infotext,
    infotext_params,
    json_schema,
    split_module_label,
)


def test_positional_order_is_the_field_order():
    args = SingArgs.from_script_args([True, "mod", 7.5, "module", False, 0.5, "red car"])
    assert args == SingArgs(True, "mod", 7.5, "module", False, 0.5, "red car")
    assert args.as_positional() == [True, "mod", 7.5, "module", False, 0.5, "red car"]
    assert [f.key for f in FIELDS] == ["enabled", "module", "guidance_scale", "text_source", "follow_preset",
                                       "strength", "module_prompt"]


def test_positional_calls_made_before_module_prompt_keep_their_meaning():
    assert SingArgs.from_script_args([True, "mod", 7.5, "module", False, 0.5]).module_prompt == ""


def test_module_prompt_round_trips_through_infotext():
    params = infotext_params("m [0123456789]", 2.0, "module", 1.0, module_prompt="red car, at night")
    assert params["SingDiffusion module prompt"] == "red car, at night"
    assert from_infotext(params)["module_prompt"] == "red car, at night"
    assert "SingDiffusion module prompt" not in infotext_params("m", 2.0, "module")
    assert from_infotext({"SingDiffusion": "m"})["module_prompt"] == ""


def test_positional_calls_made_before_strength_keep_their_meaning():
    assert SingArgs.from_script_args([True, "mod", 7.5, "module", False]) == SingArgs(True, "mod", 7.5, "module",
                                                                                      False, strength=1.0)


def test_an_empty_module_dropdown_means_the_default_module():
    assert SingArgs.from_script_args([False, None]).module == ""
    with pytest.raises(ArgsError, match="'text_source' must be a string"):
        SingArgs.from_script_args([False, "m", 1.0, None])


def test_short_positional_lists_keep_defaults():
    assert SingArgs.from_script_args([True]) == SingArgs(enabled=True)
    assert SingArgs.from_script_args([]) == SingArgs()


def test_dict_first_then_webui_padding_is_accepted():
    args = SingArgs.from_script_args([{"enabled": True, "guidance_scale": 3}, "padded-default", 0.0, "auto", True])
    assert args == SingArgs(enabled=True, guidance_scale=3.0)
    assert isinstance(args.guidance_scale, float)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ([{"enabled": True, "modul": "x"}], "unknown SingDiffusion argument.*'modul'.*accepted: enabled"),
        (["yes"], "'enabled' must be true or false, got 'yes'"),
        ([1], "'enabled' must be true or false"),
        ([True, 3], "'module' must be a string"),
        ([True, "m", "7"], "'guidance_scale' must be a number, got '7'"),
        ([True, "m", True], "'guidance_scale' must be a number"),
        ([True, "m", math.nan], "'guidance_scale' must be a number"),
        ([True, "m", -1], "between 0 and 30, got -1"),
        ([True, "m", 31], "between 0 and 30, got 31"),
        ([True, "m", 1.0, "clip"], "'text_source' must be one of auto, module, host; got 'clip'"),
        ([True, "m", 1.0, "auto", True, -0.5], "'strength' must be between 0 and 2, got -0.5"),
        ([True, "m", 1.0, "auto", True, 2.5], "'strength' must be between 0 and 2, got 2.5"),
        ([True, "m", 1.0, "auto", True, "1"], "'strength' must be a number, got '1'"),
        ([True, "m", 1.0, "auto", True, 1.0, "", "extra"], "at most 7 positional arguments"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_fix(args, match):
    with pytest.raises(ArgsError, match=match):
        SingArgs.from_script_args(args)


def test_request_args_refuse_dict_plus_positional_and_non_lists():
    with pytest.raises(ArgsError, match=r"either one dict of named arguments or positional"):
        SingArgs.check_request_args([{"enabled": True}, "mod"])
    with pytest.raises(ArgsError, match="must be a list, got dict"):
        SingArgs.check_request_args({"enabled": True})
    assert SingArgs.check_request_args([]) == SingArgs()
    assert SingArgs.check_request_args([{"module": "m"}]).module == "m"


def test_preset_holds_the_preset_fields_only():
    assert SingArgs(True, "m", 2.0, "host", False, 0.5).preset() == {
        "enabled": True,
        "module": "m",
        "guidance_scale": 2.0,
        "text_source": "host",
        "strength": 0.5,
        "module_prompt": "",
    }


def test_infotext_round_trip():
    params = infotext_params("tiny [0123456789]", 7.5, "module")
    assert params == {
        "SingDiffusion": "tiny [0123456789]",
        "SingDiffusion guidance": "7.5",
        "SingDiffusion text source": "module",
    }
    assert from_infotext(params) == {
        "enabled": True,
        "module": "tiny",
        "guidance_scale": 7.5,
        "text_source": "module",
        "follow_preset": False,
        "strength": 1.0,
        "module_prompt": "",
    }
    assert "SingDiffusion text source" not in infotext_params("tiny", 1.0, "auto")
    assert from_infotext(infotext_params("tiny", 1.0, "auto"))["text_source"] == "auto"


def test_infotext_writes_strength_only_when_it_is_not_1():
    assert "SingDiffusion strength" not in infotext_params("tiny", 7.5, "auto", 1.0)
    params = infotext_params("tiny", 7.5, "auto", 0.5)
    assert params["SingDiffusion strength"] == "0.5"
    assert from_infotext(params)["strength"] == 0.5
    assert from_infotext(infotext_params("tiny", 7.5, "auto"))["strength"] == 1.0


def test_infotext_without_the_key_turns_the_panel_off():
    assert from_infotext({"Steps": "20"}) == {"enabled": False, "follow_preset": False}


def test_module_label_split():
    assert split_module_label("my mod [abcdef0123]") == ("my mod", "abcdef0123")
    assert split_module_label("plain") == ("plain", None)
    assert split_module_label("odd [name] x") == ("odd [name] x", None)


def test_json_schema_lists_every_field_and_refuses_extras():
    schema = json_schema()
    assert set(schema["properties"]) == {f.key for f in FIELDS}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["text_source"]["enum"] == ["auto", "module", "host"]
    assert schema["properties"]["guidance_scale"]["maximum"] == 30.0
