"""SingDiffusion for AUTOMATIC1111: an AlwaysOn script that starts sampling from the module's DDIM step.

Only glue lives here; the math is sing_core's, the webui specifics are sing_webui's.
"""

from modules import script_callbacks, scripts

from sing_webui import api_args, hook, options, routes, ui, xyz


class SingDiffusionScript(scripts.Script):
    def title(self):
        return "SingDiffusion"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return ui.build(self, is_img2img)

    def process(self, p, *args):
        hook.prepare(p, args)

    def process_before_every_sampling(self, p, *args, **kwargs):
        hook.start(p, kwargs["x"], kwargs["noise"], kwargs["c"], kwargs["uc"])

    def postprocess(self, p, processed, *args):
        hook.end_of_job(p)


script_callbacks.on_ui_settings(options.on_ui_settings)
script_callbacks.on_before_ui(xyz.register)
script_callbacks.on_app_started(routes.register)
# After the API exists: importing modules.api earlier would freeze /sdapi/v1/options before extensions add settings.
script_callbacks.on_app_started(api_args.on_app_started)
