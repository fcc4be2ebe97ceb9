"""SingDiffusion args of API requests: checked before any work is done, and explicit args win over a preset.

The webui pads a request's script args with the UI's defaults, where "follow the preset" is on, so a script cannot
tell a request that named SingDiffusion from one that did not. Api.init_script_args still sees the raw request: it
is wrapped (once) to refuse bad args with HTTP 422 before generation, and to switch following off for a request
that sends SingDiffusion args without saying follow_preset itself. A request without SingDiffusion args keeps the
defaults, so it gets the checkpoint's preset, if one is saved, and is untouched otherwise.
"""

from __future__ import annotations

import functools

from sing_core.args import ArgsError
from sing_core.library import UnknownModuleError
from sing_webui import options, resolve
from sing_webui.failure import SingDiffusionError

MARK = "_singdiffusion_wrapped"


def check(request) -> list | None:
    """The SingDiffusion args the request sent (None: none), checked; SingDiffusionError (422) when they are bad."""
    try:
        sent = resolve.request_args(request)
        if sent is not None:
            resolve.check_request(sent, options.find_module)
    except (ArgsError, UnknownModuleError) as error:
        raise SingDiffusionError(str(error)) from error
    return sent


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
        sent = check(request)
        script_args = original(self, request, default_script_args, selectable_scripts, selectable_idx,
                               script_runner, *args, **kwargs)
        script = resolve.our_script(script_runner)
        if sent is not None and script is not None:
            resolve.explicit_follow_off(script_args, list(sent), script.args_from)
        return script_args

    setattr(init_script_args, MARK, True)
    Api.init_script_args = init_script_args
