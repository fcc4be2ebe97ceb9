"""Switching the live webui to other tiny checkpoints (what later "module does not fit" tests build on)."""

import pytest
from live_hosts import HOST
from webui_client import WebuiApiError

pytestmark = pytest.mark.live


def test_sd1_checkpoint_with_8_latent_channels_loads_but_cannot_sample(webui, eight_channel_checkpoint,
                                                                        host_checkpoint):
    odd = eight_channel_checkpoint
    assert odd.report["latent_channels"] == 8
    webui.refresh_checkpoints()
    try:
        webui.use_checkpoint(odd.name)
        assert webui.checkpoint_in_use() == odd.name
        # Both webuis draw the noise with 4 channels for every SD-1 model (A1111's latent_channels = 4, Forge's
        # fixed SD-1.5 VAE), so it does not fit the UNet's conv_in.
        with pytest.raises(WebuiApiError) as failure:
            webui.txt2img(seed=1)
        assert failure.value.status == 500
        assert HOST.eight_channel_error in str(failure.value.body), failure.value.body
    finally:
        webui.use_checkpoint(host_checkpoint.name)
    assert webui.txt2img(seed=1).image.shape == (64, 64, 3)
