"""SingDiffusion args of API requests: checked before any work is done, and explicit args win over a preset.

The webui pads a request's script args with the UI's defaults, where "follow the preset" is on, so a script cannot
tell a request that named SingDiffusion from one that did not. Api.init_script_args still sees the raw request: it
is wrapped (once) to refuse bad args with HTTP 422 before generation, and to switch following off for a request
that sends SingDiffusion args without saying follow_preset itself. A request without SingDiffusion args keeps the
defaults, so it gets the checkpoint's preset, if one is saved, and is untouched otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from fastapi import HTTPException

from sing_core.args import FIELDS, ArgsError, SingArgs
from sing_core.library import UnknownModuleError
from sing_webui import options
from sing_webui.failure import SingDiffusionError

TITLE = "singdiffusion"
FOLLOW_INDEX = [field.key for field in FIELDS].index("follow_preset")
MARK = "_singdiffusion_wrapped"


def request_args(request) -> list | None:
    """The "args" a request sent for SingDiffusion (title matched case-insensitively as the webui does); None when
    it sent none. HTTPException 422 when they are malformed."""
    scripts = getattr(request, "alwayson_scripts", None) or {}
    for name, value in scripts.items():
        if name.lower() != TITLE:
            continue
        if not isinstance(value, Mapping):
            raise HTTPException(422, detail=f'SingDiffusion: alwayson_scripts["{name}"] must be an object like '
                                            '{"args": [...]}, got ' + type(value).__name__)
        args = value.get("args")
        return None if args is None else args
    return None


def check(args) -> SingArgs:
    """The request's args, types and module name checked (the module is looked up only when enabled)."""
    try:
        checked = SingArgs.check_request_args(args)
        if checked.enabled:
            options.find_module(checked.module)  # the generation's own lookup and message
    except (ArgsError, UnknownModuleError) as error:
        raise SingDiffusionError(str(error)) from error
    return checked


def explicit_follow_off(script_args: list, args: list, start: int) -> None:
    """Where the request sent args but no follow_preset, follow it no more: what it sent is what it gets."""
    if not args:
        return
    if isinstance(args[0], Mapping):
        if "follow_preset" not in args[0]:
            script_args[start] = {**args[0], "follow_preset": False}
    elif len(args) <= FOLLOW_INDEX:
        script_args[start + FOLLOW_INDEX] = False


def our_script(script_runner):
    return next((s for s in script_runner.alwayson_scripts if s.title().lower() == TITLE), None)


def on_app_started(_demo, _app) -> None:
    patch()


def patch() -> None:
    """Wrap modules.api.api.Api.init_script_args once (it is called again on every UI reload).

    Not at import: modules.api.models builds the /sdapi/v1/options response model from the settings known when it
    is first imported, so importing it before the UI is built would hide every extension's settings there."""
    try:
        from modules.api.api import Api
    except ImportError as error:
        print(f"SingDiffusion: warning: cannot import the webui's API ({error}); API requests with SingDiffusion "
              "args are not checked early and explicit args do not switch presets off", flush=True)
        return
    original = getattr(Api, "init_script_args", None)
    if original is None:
        print("SingDiffusion: warning: this webui has no Api.init_script_args; API requests with SingDiffusion args "
              "are not checked early and explicit args do not switch presets off", flush=True)
        return
    if getattr(original, MARK, False):
        return

    @functools.wraps(original)
    def init_script_args(self, request, default_script_args, selectable_scripts, selectable_idx, script_runner,
                         *args, **kwargs):
        sent = request_args(request)
        if sent is not None:
            check(sent)
        script_args = original(self, request, default_script_args, selectable_scripts, selectable_idx,
                               script_runner, *args, **kwargs)
        script = our_script(script_runner)
        if sent is not None and script is not None:
            explicit_follow_off(script_args, list(sent), script.args_from)
        return script_args

    setattr(init_script_args, MARK, True)
    Api.init_script_args = init_script_args
