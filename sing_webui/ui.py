"""The SingDiffusion panel in txt2img and img2img, generated from sing_core.args.FIELDS.

ui() returns the components in FIELDS order, which is the positional order of the API's script args.
"""

from __future__ import annotations

import gradio as gr
from modules.ui_common import create_refresh_button
from modules.ui_components import FormRow, InputAccordion

from sing_core.args import FIELDS, PRESET_KEYS, from_infotext, split_module_label
from sing_webui import modules_ui, options, preset_ui


def module_choices() -> dict:
    return {"choices": options.library().names()}


def infotext_module(params: dict) -> str | None:
    """The module of pasted infotext, found by name or, for a renamed file, by its hash; None leaves the panel."""
    if "SingDiffusion" not in params:
        return None
    name, short_hash = split_module_label(params["SingDiffusion"])
    library = options.library()
    if name in library.entries or not short_hash:
        return name
    from sing_core.weights import short_hash as hash_of

    for entry in library.entries.values():
        if hash_of(entry.path) == short_hash:
            return entry.name
    return name


def build(script, is_img2img: bool) -> list:
    field = {f.key: f for f in FIELDS}
    with InputAccordion(False, label=field["enabled"].label, elem_id=script.elem_id("enabled")) as enabled:
        enabled.accordion.elem_classes = [*enabled.accordion.elem_classes, "singdiffusion-panel"]
        with FormRow():
            names = options.library().names()
            default = options.default_module_name()
            module = gr.Dropdown(label=field["module"].label, choices=names,
                                 value=default if default in names else None, elem_id=script.elem_id("module"))
            create_refresh_button(module, options.refresh_library, module_choices, script.elem_id("module_refresh"))
        f = field["guidance_scale"]
        guidance_scale = gr.Slider(label=f.label, minimum=f.minimum, maximum=f.maximum, step=0.5, value=f.default,
                                   elem_id=script.elem_id("guidance_scale"))
        f = field["strength"]
        strength = gr.Slider(label=f.label, minimum=f.minimum, maximum=f.maximum, step=0.05, value=f.default,
                             elem_id=script.elem_id("strength"))
        f = field["module_prompt"]
        # Its hint comes from javascript/singdiffusion.js like the other controls'.
        module_prompt = gr.Textbox(label=f.label, lines=1, placeholder="empty: the prompt",
                                   elem_id=script.elem_id("module_prompt"))
        with FormRow():
            text_source = gr.Radio(label=field["text_source"].label, choices=list(field["text_source"].choices),
                                   value=field["text_source"].default, elem_id=script.elem_id("text_source"))
            follow_preset = gr.Checkbox(label=field["follow_preset"].label, value=field["follow_preset"].default,
                                        elem_id=script.elem_id("follow_preset"))
        with FormRow():
            save = gr.Button("Save as preset for this checkpoint", size="sm", elem_id=script.elem_id("save_preset"),
                             tooltip="Save these values for the checkpoint in use; following switches on. A preset "
                                     "cannot enable SingDiffusion on a checkpoint the module cannot serve.")
            preset_status = gr.HTML(elem_id=script.elem_id("preset_status"))
        modules_ui.build(script, module)
        # Pressed by javascript/singdiffusion.js when the checkpoint changes; the textbox carries its title.
        load = gr.Button(visible=False, elem_id=script.elem_id("load_preset"))
        checkpoint = gr.Textbox(visible=False, elem_id=script.elem_id("checkpoint"))

    components = {"enabled": enabled, "module": module, "guidance_scale": guidance_scale,
                  "text_source": text_source, "follow_preset": follow_preset, "strength": strength,
                  "module_prompt": module_prompt}
    values = [components[key] for key in PRESET_KEYS]
    save_inputs, load_inputs = [*values, checkpoint], [follow_preset, checkpoint]
    save.click(fn=preset_ui.save, _js=preset_ui.with_checkpoint(save_inputs), inputs=save_inputs,
               outputs=[preset_status, follow_preset])
    load.click(fn=preset_ui.load(components), _js=preset_ui.with_checkpoint(load_inputs), inputs=load_inputs,
               outputs=[*values, preset_status], show_progress=False)
    follow_preset.change(fn=None, _js="singdiffusionFollowStatus", inputs=[follow_preset, preset_status],
                         outputs=[preset_status], show_progress=False)
    script.infotext_fields = [(components["module"], infotext_module)] + [
        (components[key], lambda params, key=key: from_infotext(params).get(key))
        for key in components if key != "module"
    ]
    script.paste_field_names = [f.infotext for f in FIELDS if f.infotext]
    return [components[f.key] for f in FIELDS]
