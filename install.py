"""Installs nothing when the webui already has what SingDiffusion needs (torch and safetensors ship with it)."""

import launch

if not launch.is_installed("safetensors"):
    launch.run_pip("install safetensors", "safetensors for SingDiffusion")
