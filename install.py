"""Installs nothing when the host already has what SingDiffusion needs (torch and safetensors ship with it).

A1111 and Forge run this with their `launch` module; ComfyUI-Manager runs it as a plain script, where there is no
`launch` and ComfyUI itself brings torch and safetensors.
"""

try:
    import launch
except ImportError:  # ComfyUI-Manager, or any plain Python
    launch = None

if launch is not None and not launch.is_installed("safetensors"):
    launch.run_pip("install safetensors", "safetensors for SingDiffusion")
