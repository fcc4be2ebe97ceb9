"""Switching the live webui to other tiny checkpoints (what later "module does not fit" tests build on)."""

import pytest
from webui_client import WebuiApiError

pytestmark = pytest.mark.live


def test_sd1_checkpoint_with_8_latent_channels_loads_but_cannot_sample(webui, build_host_checkpoint, host_checkpoint):
    odd = build_host_checkpoint("tiny-sd1-c8", seed=1, latent_channels=8)
    assert odd.report["latent_channels"] == 8
    webui.refresh_checkpoints()
    try:
        webui.use_checkpoint(odd.name)
        assert webui.options()["sd_model_checkpoint"].startswith(f"{odd.name}.safetensors")
        # v1.10.1 gives every SD-1 model latent_channels = 4, so its noise does not fit the UNet's conv_in.
        with pytest.raises(WebuiApiError) as failure:
            webui.txt2img(seed=1)
        assert failure.value.status == 500
        assert "to have 8 channels, but got 4 channels" in failure.value.body["errors"]
    finally:
        webui.use_checkpoint(host_checkpoint.name)
    assert webui.txt2img(seed=1).image.shape == (64, 64, 3)
