"""Which SingDiffusion values a generation uses and what an API request sent, as plain functions (no webui import).

The order: X/Y/Z values (p.singdiffusion_<key>) > explicit args > the checkpoint's preset, where the args follow it >
the panel's defaults. An empty module means the one chosen in Settings, else the first installed. Where a function
takes a webui object (p, a request, the script runner), it reads only the attributes named in its docstring (tests
hand it a stand-in with just those); hook, api_args and options pass the live ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sing_core.args import FIELD_BY_KEY, FIELDS, ArgsError, SingArgs, check_value
from sing_core.kinds import ModuleKind
from sing_core.library import ModuleEntry, ModuleGoneError, ModuleLibrary, UnknownModuleError

TITLE = "singdiffusion"  # the script's title, as the webui matches alwayson_scripts keys (case-insensitively)
FOLLOW_INDEX = [field.key for field in FIELDS].index("follow_preset")
XYZ_KEYS = tuple(field.key for field in FIELDS if field.xyz)  # the fields an X/Y/Z axis sets on p


def xyz_values(p) -> dict[str, Any]:
    """The values X/Y/Z axes set on p (p.singdiffusion_<key>), unchecked."""
    return {key: getattr(p, f"singdiffusion_{key}") for key in XYZ_KEYS if hasattr(p, f"singdiffusion_{key}")}


def effective_args(script_args: Sequence[Any], follow: Callable[[SingArgs], SingArgs],
                   xyz: Mapping[str, Any]) -> SingArgs:
    """Script args (positional or one dict), then `follow` (the checkpoint's preset where they follow it), then the
    X/Y/Z values over both. ArgsError for a bad value of any of them."""
    args = follow(SingArgs.from_script_args(script_args))
    overrides = {key: check_value(FIELD_BY_KEY[key], value, "the X/Y/Z plot") for key, value in xyz.items()}
    return args.replace(**overrides) if overrides else args


def guidance_scale(args: SingArgs, cfg_scale: float, kind: ModuleKind | None = None) -> float:
    """The module's guidance as its kind resolves it (ModuleKind.effective_guidance): its own, else for
    SingDiffusion the generation's CFG scale (0 follows it), for One More Step its default 1."""
    return (kind or ModuleKind()).effective_guidance(args.guidance_scale, cfg_scale)


def request_args(request) -> list | None:
    """The "args" request.alwayson_scripts sent for SingDiffusion (title matched case-insensitively as the webui
    does); None when it sent none. ArgsError when the entry is not an object."""
    scripts = getattr(request, "alwayson_scripts", None) or {}
    for name, value in scripts.items():
        if name.lower() != TITLE:
            continue
        if not isinstance(value, Mapping):
            raise ArgsError(f'SingDiffusion: alwayson_scripts["{name}"] must be an object like '
                            '{"args": [...]}, got ' + type(value).__name__)
        args = value.get("args")
        return None if args is None else args
    return None


def check_request(args: Any, find_module: Callable[[str], ModuleEntry]) -> SingArgs:
    """A request's args, types and module name checked (the module is looked up only when enabled); ArgsError or
    UnknownModuleError, each a 422."""
    checked = SingArgs.check_request_args(args)
    if checked.enabled:
        find_module(checked.module)  # the generation's own lookup and message
    return checked


def explicit_follow_off(script_args: list, args: list, start: int) -> None:
    """Where the request sent args but no follow_preset, follow it no more: what it sent is what it gets.
    `script_args` are the webui's (the request's args padded with the UI's defaults), ours from index `start`."""
    if not args:
        return
    if isinstance(args[0], Mapping):
        if "follow_preset" not in args[0]:
            script_args[start] = {**args[0], "follow_preset": False}
    elif len(args) <= FOLLOW_INDEX:
        script_args[start + FOLLOW_INDEX] = False


def our_script(script_runner):
    """SingDiffusion among script_runner.alwayson_scripts (each read by its title()); None if it is not loaded."""
    return next((s for s in script_runner.alwayson_scripts if s.title().lower() == TITLE), None)


def default_module_name(chosen: str, installed: Sequence[str]) -> str:
    """The module a generation uses when it names none: the one chosen in Settings (an error later if it is gone,
    never silently another), else the first installed one, else ""."""
    return chosen or (installed[0] if installed else "")


def find_module(name: str, library: ModuleLibrary, rescan: Callable[[], ModuleLibrary],
                roots: Sequence[Path]) -> ModuleEntry:
    """An installed module by name (already defaulted: "" means none is installed), rescanning once for one copied
    in or moved while the webui runs. UnknownModuleError says what is installed and where modules go."""
    if not name:
        raise UnknownModuleError(f"no module is installed. Put a module in {' or '.join(map(str, roots))}, or "
                                 "disable SingDiffusion.")
    try:
        return library.resolve(name)
    except ModuleGoneError as gone:
        try:
            return rescan().resolve(name)  # moved within the folders: found again under its name
        except UnknownModuleError:
            raise gone from None
    except UnknownModuleError:
        return rescan().resolve(name)
