"""The tiny SingDiffusion module builder (needs only the test interpreter: runs without a webui too)."""

import json

import pytest
import torch
from tiny_sing_module import WEIGHTS_NAME, load_module, predict_x0, write_tiny_sing_module


def test_module_folder_has_the_release_layout_without_time_projection(tmp_path):
    write_tiny_sing_module(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", WEIGHTS_NAME]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["_class_name"] == "UNet2DConditionModel"
    assert config["cross_attention_dim"] == 32
    state = torch.load(tmp_path / "m" / WEIGHTS_NAME, weights_only=True)
    assert not [key for key in state if "time_emb_proj" in key]
    assert "conv_out.weight" in state


@pytest.mark.parametrize("mean_offset", [1.0, -1.0])
def test_reloaded_module_predicts_the_chosen_latent_mean(tmp_path, mean_offset):
    report = write_tiny_sing_module(tmp_path / "m", seed=3, mean_offset=mean_offset)
    unet = load_module(tmp_path / "m")
    x1 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    x0_hat = predict_x0(unet, x1, context)
    assert x0_hat.shape == x1.shape
    assert abs(float(x0_hat.mean()) - mean_offset) < 0.25
    assert float(x0_hat.std()) > 0.05  # a real prediction, not the constant bias
    assert abs(report["x0_hat_mean"] - mean_offset) < 0.25


def test_module_output_depends_on_noise_and_text(tmp_path):
    write_tiny_sing_module(tmp_path / "m")
    unet = load_module(tmp_path / "m")
    g = torch.Generator().manual_seed(0)
    x1, other_x1 = torch.randn(2, 1, 4, 8, 8, generator=g)
    context, other_context = torch.randn(2, 1, 77, 32, generator=g)
    reference = predict_x0(unet, x1, context)
    assert not torch.allclose(reference, predict_x0(unet, other_x1, context))
    assert not torch.allclose(reference, predict_x0(unet, x1, other_context))
