"""Gradient checkpointing of SingUNet: the same loss and gradients, fewer activations kept; never at inference."""

import pytest
import torch
import torch.utils.checkpoint
from unet_helpers import TINY, TINY_SD2, tiny_module, torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


def loss_and_gradients(unet, x1, context):
    unet.zero_grad(set_to_none=True)
    loss = unet(x1, context).square().mean()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in unet.named_parameters()}


@pytest.mark.parametrize("config", [TINY, TINY_SD2], ids=["sd1", "sd2"])
def test_checkpointing_gives_the_same_gradients(config, monkeypatch):
    unet = tiny_module(config).unet.train()
    g = torch.Generator().manual_seed(3)
    x1, context = torch.randn(2, 4, 8, 12, generator=g), torch.randn(2, 7, 24, generator=g)
    loss, gradients = loss_and_gradients(unet, x1, context)

    calls, checkpoint = [], torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    unet.enable_gradient_checkpointing()
    checkpointed_loss, checkpointed = loss_and_gradients(unet, x1, context)
    # every down block, the mid block and every up block
    assert len(calls) == 2 * len(unet.down_blocks) + 1
    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=0)
    for name, grad in gradients.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-6, atol=1e-7, msg=name)


def test_inference_never_checkpoints(monkeypatch):
    unet = tiny_module(TINY).unet
    unet.enable_gradient_checkpointing()
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: pytest.fail("checkpointed"))
    with torch.no_grad():
        out = unet(torch.randn(1, 4, 8, 8), torch.randn(1, 7, 24))
    assert out.shape == (1, 4, 8, 8)
