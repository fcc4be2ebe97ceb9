"""The webui side of the adapter: glue between AUTOMATIC1111's objects and sing_core.

Unlike sing_core, these modules import the webui (modules.*) and gradio; scripts/singdiffusion.py is their entry.
The decisions (rules, sampler_start, resolve, preset_rules) import no webui, so the unit tier tests them.
"""
