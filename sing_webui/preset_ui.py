"""The panel's preset controls: "save as preset for this checkpoint", and the hidden "load" button that the page's
JavaScript (javascript/singdiffusion.js) presses when the checkpoint changes, so that while following the panel
shows the values a generation will use.

Both get the checkpoint the page shows (opts.sd_model_checkpoint, or Forge's own dropdown; passed in by _js) and fall
back to the loaded one.
"""

from __future__ import annotations

import html

import gradio as gr

from sing_core.args import PRESET_KEYS
from sing_webui import options, preset_rules, presets, routes


def with_checkpoint(inputs: list) -> str:
    """_js for a handler below: its last input (a hidden textbox) becomes the title of the checkpoint the page shows.
    Gradio (3.41 and 4) calls _js with the inputs' values followed by the outputs' and sends what it returns to the
    server as the inputs, so only the first len(inputs) are handed on."""
    return f"(...values) => singdiffusionWithCheckpoint(values.slice(0, {len(inputs)}))"


def status(text: str, error: bool = False) -> str:
    css = "singdiffusion-status singdiffusion-error" if error else "singdiffusion-status"
    return f'<span class="{css}">{html.escape(text)}</span>'


def current_info(title: str | None):
    info = presets.checkpoint_info(title)
    if info is None:
        model = presets.loaded_model()
        info = getattr(model, "sd_checkpoint_info", None)
    return info


def save(*inputs):
    """Store the panel's values (PRESET_KEYS order, then the checkpoint's title) for the checkpoint; following is
    switched on (the panel now shows the preset)."""
    *panel, title = inputs
    info = current_info(title)
    if info is None:
        return status("No checkpoint is loaded: load one, then save its preset.", error=True), gr.update()
    values = dict(zip(PRESET_KEYS, panel, strict=True))
    values["module"] = values["module"] or ""  # an empty dropdown sends None
    try:
        preset = presets.save(info.title, values)
    except routes.REFUSED as error:
        return status(str(error), error=True), gr.update()
    return status(f"Saved as the preset for {preset.checkpoint}."), True


def load(components: dict):
    """A handler giving the panel the preset of the page's checkpoint while following; else it changes nothing."""
    keys = list(PRESET_KEYS)

    def handler(follow, title):
        unchanged = [gr.update() for _ in keys]
        if not follow:
            return [*unchanged, gr.update()]
        info = current_info(title)
        if info is None:
            return [*unchanged, gr.update()]
        preset_values, line = presets.panel_values(info)
        values = preset_rules.panel_shows(preset_values, {key: components[key].value for key in keys},
                                          options.default_module_name)
        return [*(values[key] for key in keys), status(line)]

    return handler
