"""The one argument schema of the SingDiffusion script: UI, API (positional and named), infotext, XYZ and presets.

Every host surface is generated from FIELDS, so a new argument is added here once. Values are checked strictly:
an API client that sends a wrong type or an unknown key gets an ArgsError naming the argument and the fix, never a
silent default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

TEXT_SOURCES = ("auto", "module", "host")
GUIDANCE_MAX = 30.0
STRENGTH_MAX = 2.0


class ArgsError(ValueError):
    """Bad SingDiffusion arguments; the message names the argument, what came and what is accepted."""


@dataclasses.dataclass(frozen=True)
class Field:
    key: str  # the API dict key, the dataclass attribute and the p attribute suffix (p.singdiffusion_<key>)
    kind: type
    default: Any
    label: str  # UI label
    help: str
    infotext: str | None = None  # infotext key; None: not written
    xyz: str | None = None  # X/Y/Z plot axis label; None: no axis
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    in_preset: bool = True


FIELDS: tuple[Field, ...] = (
    Field("enabled", bool, False, "SingDiffusion",
          "Replace the Gaussian start of sampling with the module's DDIM step.", xyz="SingDiffusion enabled"),
    Field("module", str, "", "Module", "A module in models/SingDiffusion; empty: the default from Settings.",
          infotext="SingDiffusion", xyz="SingDiffusion module"),
    Field("guidance_scale", float, 0.0, "Module guidance", "The module's own CFG. SingDiffusion modules: normalized, "
          "0 follows the CFG scale, ≤ 1 the prompt alone. One More Step modules: plain CFG against \"\", 0 is its "
          "default 1.", infotext="SingDiffusion guidance", xyz="SingDiffusion guidance",
          minimum=0.0, maximum=GUIDANCE_MAX),
    Field("text_source", str, "auto", "Text encoder", "module: the module's own text encoder on the plain prompt "
          "(as trained); host: the checkpoint's own conditioning (emphasis, embeddings) where it is what the module "
          "reads; auto: host where it is, else module.", infotext="SingDiffusion text source", choices=TEXT_SOURCES),
    Field("follow_preset", bool, True, "Follow the preset for this checkpoint",
          "Use the values saved for the checkpoint in use, if any.", in_preset=False),
    # Last: positional API calls made before it existed keep their meaning.
    Field("strength", float, 1.0, "Module strength", "Scales the module's pull: 0 is the plain Gaussian start, 1 the "
          "paper's method, above 1 a stronger pull toward the prompt's brightness.",
          infotext="SingDiffusion strength", xyz="SingDiffusion strength", minimum=0.0, maximum=STRENGTH_MAX),
    # Appended after strength for the same reason.
    Field("module_prompt", str, "", "Module prompt", "What the module reads instead of the prompt (One More Step's "
          "low-frequency control: prompt \"a car\", module prompt \"red car\"); empty: the prompt.",
          infotext="SingDiffusion module prompt"),
)
FIELD_BY_KEY = {field.key: field for field in FIELDS}
PRESET_KEYS = tuple(field.key for field in FIELDS if field.in_preset)


def check_value(field: Field, value: Any, source: str = "") -> Any:
    """The value converted to the field's type, or ArgsError. Ints are accepted for floats, nothing else is coerced."""
    where = f"SingDiffusion argument '{field.key}'" + (f" in {source}" if source else "")
    if field.kind is bool:
        if not isinstance(value, bool):
            raise ArgsError(f"{where} must be true or false, got {value!r} ({type(value).__name__})")
        return value
    if field.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ArgsError(f"{where} must be a number, got {value!r} ({type(value).__name__})")
        value = float(value)
        low, high = field.minimum, field.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ArgsError(f"{where} must be between {field.minimum:g} and {field.maximum:g}, got {value:g}")
        return value
    if value is None and field.choices is None:
        return field.default  # an empty dropdown sends None: the default (for the module, the one from Settings)
    if not isinstance(value, str):
        raise ArgsError(f"{where} must be a string, got {value!r} ({type(value).__name__})")
    if field.choices is not None and value not in field.choices:
        raise ArgsError(f"{where} must be one of {', '.join(field.choices)}; got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class SingArgs:
    enabled: bool = False
    module: str = ""
    guidance_scale: float = 0.0
    text_source: str = "auto"
    follow_preset: bool = True
    strength: float = 1.0
    module_prompt: str = ""

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], source: str = "", allowed: Sequence[str] | None = None
    ) -> SingArgs:
        """Named arguments; unknown keys are an error (a typo must not silently fall back to a default)."""
        allowed = tuple(allowed or FIELD_BY_KEY)
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            where = f" in {source}" if source else ""
            raise ArgsError(f"unknown SingDiffusion argument(s) {', '.join(map(repr, unknown))}{where}; "
                            f"accepted: {', '.join(allowed)}")
        return cls(**{key: check_value(FIELD_BY_KEY[key], value, source) for key, value in values.items()})

    @classmethod
    def from_script_args(cls, args: Sequence[Any], source: str = "") -> SingArgs:
        """The script's arguments as the webui passes them: positional in FIELDS order, or ONE dict first.

        The webui fills the positions a request leaves out with the UI's defaults, so after a dict come defaults,
        which are ignored; `check_request_args` refuses a request that really sent both.
        """
        args = list(args)
        if args and isinstance(args[0], Mapping):
            return cls.from_dict(args[0], source)
        if len(args) > len(FIELDS):
            raise ArgsError(f"SingDiffusion takes at most {len(FIELDS)} positional arguments "
                            f"({', '.join(f.key for f in FIELDS)}), got {len(args)}")
        pairs = zip(FIELDS, args, strict=False)  # the tail keeps the dataclass defaults
        return cls(**{field.key: check_value(field, value, source) for field, value in pairs})

    @classmethod
    def check_request_args(cls, args: Any, source: str = "") -> SingArgs:
        """Arguments exactly as an API request sent them (before the webui pads them with defaults)."""
        if not isinstance(args, (list, tuple)):
            raise ArgsError(f'"args" of SingDiffusion must be a list, got {type(args).__name__}')
        if args and isinstance(args[0], Mapping) and len(args) > 1:
            raise ArgsError(f"pass SingDiffusion either one dict of named arguments or positional arguments, "
                            f"not both (got {len(args)} arguments)")
        if not args:
            return cls()
        return cls.from_script_args(args, source)

    def as_positional(self) -> list[Any]:
        return [getattr(self, field.key) for field in FIELDS]

    def preset(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in PRESET_KEYS}

    def replace(self, **changes: Any) -> SingArgs:
        return dataclasses.replace(self, **changes)


def infotext_params(
    module_label: str, guidance_scale: float, text_source: str, strength: float = 1.0, module_prompt: str = ""
) -> dict[str, str]:
    """The infotext of one generation: the values actually used (guidance after 'follow CFG' is resolved).
    Values at their defaults that change nothing are left out (text source auto, strength 1, no module prompt)."""
    params = {"SingDiffusion": module_label, "SingDiffusion guidance": f"{guidance_scale:g}"}
    if text_source != "auto":
        params["SingDiffusion text source"] = text_source
    if strength != 1.0:
        params["SingDiffusion strength"] = f"{strength:g}"
    if module_prompt:
        params["SingDiffusion module prompt"] = module_prompt
    return params


def split_module_label(label: str) -> tuple[str, str | None]:
    """'name [0123456789]' -> ('name', '0123456789'); a label without a hash gives (label, None)."""
    label = label.strip()
    if label.endswith("]") and " [" in label:
        name, _, short_hash = label[:-1].rpartition(" [")
        return name, short_hash or None
    return label, None


def from_infotext(params: Mapping[str, str]) -> dict[str, Any]:
    """Panel values restored from pasted infotext. Without the SingDiffusion key the panel is turned off.

    Pasted values are explicit, so following a preset is switched off (else a preset would override them).
    """
    if "SingDiffusion" not in params:
        return {"enabled": False, "follow_preset": False}
    name, _ = split_module_label(params["SingDiffusion"])
    values: dict[str, Any] = {"enabled": True, "module": name, "follow_preset": False,
                              "text_source": params.get("SingDiffusion text source", "auto")}
    values["guidance_scale"] = _infotext_number(params, "SingDiffusion guidance", 0.0)
    values["strength"] = _infotext_number(params, "SingDiffusion strength", 1.0)
    values["module_prompt"] = params.get("SingDiffusion module prompt", "")
    return values


def _infotext_number(params: Mapping[str, str], key: str, default: float) -> float:
    """A number from pasted infotext; text that is not one (edited by hand) gives the default."""
    try:
        return float(params.get(key, default))
    except ValueError:
        return default


def json_schema() -> dict[str, Any]:
    """JSON schema of the named (dict) form, served to API clients so they can build payloads."""
    json_types = {bool: "boolean", float: "number", str: "string"}
    properties: dict[str, Any] = {}
    for field in FIELDS:
        prop: dict[str, Any] = {"type": json_types[field.kind], "default": field.default, "title": field.label,
                                "description": field.help}
        if field.choices:
            prop["enum"] = list(field.choices)
        if field.minimum is not None:
            prop["minimum"] = field.minimum
        if field.maximum is not None:
            prop["maximum"] = field.maximum
        properties[field.key] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SingDiffusion script arguments",
        "description": 'Pass as "alwayson_scripts": {"SingDiffusion": {"args": [<this object>]}}, or positionally '
                       f"in the order {', '.join(f.key for f in FIELDS)}.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
