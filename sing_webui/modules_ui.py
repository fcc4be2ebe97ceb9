"""The "Modules" accordion inside the panel: the installed modules as a table, and converting a release folder's
.bin to .safetensors (atomic; the .bin is kept).

It sits in the panel, closed, beside the module dropdown it feeds: that is where a user finds a module missing or
slow to load, and the webui's Settings page only stores options (it has no place for a table with actions). The
table is read when the accordion is first opened (javascript/singdiffusion.js presses its refresh button), not at
start-up, because the short hash reads each module file once.
"""

from __future__ import annotations

import html

import gradio as gr
from modules.ui_components import FormRow, ToolButton

from sing_webui import download_ui, module_list, options, routes
from sing_webui.preset_ui import status

COLUMNS = ("Name", "Hash", "Latent channels", "Cross-attention", "Size", "Format", "Path")
REFRESH = "\U0001f504"  # 🔄, the webui's refresh symbol


def table_html(rows: list[dict]) -> str:
    if not rows:
        return download_ui.no_module_hint(download_ui.loaded_family(), options.module_roots())
    head = "".join(f"<th>{name}</th>" for name in COLUMNS)
    body = []
    for row in rows:
        cells = (row["name"], row["hash"] or "-", row["latent_channels"] or "-", row["cross_attention_dim"] or "-",
                 module_list.human_size(row["size_bytes"]), row["format"], f"{row['folder']}/{row['path']}")
        body.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells) + "</tr>")
        if row["error"]:
            body.append(f'<tr><td colspan="{len(COLUMNS)}" class="singdiffusion-error">'
                        f'{html.escape(row["error"])}</td></tr>')
    return f'<table class="singdiffusion-modules"><tr>{head}</tr>{"".join(body)}</table>'


def refresh():
    rows = module_list.rows(refresh=True)
    convertible = module_list.convertible_names()
    return (table_html(rows), gr.update(choices=convertible, value=convertible[0] if convertible else None),
            gr.update(choices=options.library().names()), "")


def convert(name):
    if not name:
        return (gr.update(), gr.update(), gr.update(),
                status("Choose a release folder holding diffusion_pytorch_model.bin.", error=True))
    try:
        row = module_list.convert(name)
    except routes.REFUSED as error:
        return gr.update(), gr.update(), gr.update(), status(str(error), error=True)
    table, choices, modules, _ = refresh()
    return table, choices, modules, status(f"Converted {row['name']}: it now loads from .safetensors "
                                           f"(hash {row['hash']}); the .bin was kept.")


def build(script, module_dropdown) -> None:
    with gr.Accordion("Modules", open=False, elem_id=script.elem_id("modules")):
        table = gr.HTML(status(f"Press {REFRESH} to read the installed modules."),
                        elem_id=script.elem_id("modules_table"))
        with FormRow():
            to_convert = gr.Dropdown(label="Release folder to convert", choices=module_list.convertible_names(),
                                     elem_id=script.elem_id("convert_choice"))
            convert_button = gr.Button("Convert .bin to .safetensors", size="sm", elem_id=script.elem_id("convert"),
                                       tooltip="Writes diffusion_pytorch_model.safetensors into the release folder "
                                               "(atomic); the .bin is kept and the module keeps its name.")
            refresh_button = ToolButton(REFRESH, elem_id=script.elem_id("modules_refresh"),
                                        tooltip="Rescan the module folders and read each module's header")
        result = gr.HTML(elem_id=script.elem_id("convert_status"))
        download_ui.build(script, [table, to_convert, module_dropdown, result], refresh)
    outputs = [table, to_convert, module_dropdown, result]
    refresh_button.click(fn=refresh, outputs=outputs)
    convert_button.click(fn=convert, inputs=[to_convert], outputs=outputs)
