"""The ComfyUI side of the adapter: two nodes that put sing_core's start into ComfyUI's samplers.

Unlike sing_core, host.py and nodes.py import ComfyUI (comfy.*, folder_paths), and only inside ComfyUI; the rules
(applies.py, conds.py, start.py, family.py) read ComfyUI's objects by their attributes and import nothing of it, so
the unit tier tests them without a ComfyUI. The repository's root __init__.py imports nodes.py, their entry.
"""
