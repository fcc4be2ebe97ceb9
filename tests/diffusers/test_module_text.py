"""What a module reads prompts with (load_module's text_encoder=): a path, a pipeline, or an object with .encode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_pipes import SD2_WIDTH, seeded

import sing_core.text
import sing_diffusers
from sing_diffusers import SingDiffusersError

PROMPTS = ["a car", "a red car at night"]
STEPS = 4


def sd2_reference_embeddings(folder: Path, prompts: list[str]) -> torch.Tensor:
    """SD-2's text conditioning as diffusers computes it from the folder: its tokenizer ("!" padding, 77 tokens) and
    its text_encoder's last hidden state."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert tokenizer.pad_token == "!"
    ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return CLIPTextModel.from_pretrained(folder / "text_encoder")(ids)[0]


class ReadyEncoder:
    """Anything with .encode(prompts) serves; this one looks embeddings up in a table."""

    def __init__(self, table: dict[str, torch.Tensor]):
        self.table = table

    def encode(self, prompts):
        return torch.cat([self.table[p] for p in prompts])


def start(pipe, module, **kwargs):
    return sing_diffusers.start_latents(pipe, module, PROMPTS, num_inference_steps=STEPS, generator=seeded(3),
                                        module_guidance_scale=2.0, **kwargs)


def test_a_pipeline_and_an_object_with_encode_give_the_same_start(sdxl, oms_xl_dir, sd2_built):
    by_pipeline = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=sd2_built)
    encoder = by_pipeline.text
    table = {p: encoder.encode([p]) for p in [*PROMPTS, ""]}
    by_object = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=ReadyEncoder(table))
    torch.testing.assert_close(start(sdxl, by_object), start(sdxl, by_pipeline), rtol=0, atol=0)
    too_narrow = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=ReadyEncoder(
        {p: torch.zeros(1, 77, 5) for p in table}))
    with pytest.raises(SingDiffusersError, match=r"embeddings have shape \[2, 77, 5\].*\[B, T, 48\]"):
        start(sdxl, too_narrow)


def test_a_path_goes_to_open_text_encoder_with_the_oms_tokenizer(sdxl, oms_xl_dir, tmp_path, monkeypatch):
    """A path is read by sing_core.text.open_text_encoder for the module's text kind, with the release's
    oms_tokenizer/ for an encoder that has no tokenizer/ beside it; its width is checked against the module's
    cross_attention_dim, whatever it is (no fixed 1024)."""
    calls = []

    class Encoder:
        def __init__(self, hidden_size):
            self.hidden_size = hidden_size

        def encode(self, prompts):
            return torch.zeros(len(prompts), 77, self.hidden_size)

    def fake_open(text_kind, path, device="cpu", dtype=torch.float32, tokenizer=None):
        calls.append((text_kind, Path(path), tokenizer, dtype))
        return Encoder(SD2_WIDTH if "fits" in str(path) else 1024)

    monkeypatch.setattr(sing_core.text, "open_text_encoder", fake_open)
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=tmp_path / "fits.safetensors")
    assert calls == [("openclip_h", tmp_path / "fits.safetensors", oms_xl_dir / "oms_tokenizer", torch.float32)]
    assert module.text.hidden_size == SD2_WIDTH
    with pytest.raises(SingDiffusersError, match=r"is 1024 wide and the module reads 48-wide embeddings"):
        sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=tmp_path / "v2-1.safetensors")


@pytest.mark.parametrize("given", ["folder", "text_encoder"])
def test_a_partial_sd2_folder_or_its_text_encoder(given, sdxl, oms_xl_dir, sd2_text_dir):
    """A diffusers SD-2 folder with only text_encoder/ and tokenizer/ (or its text_encoder/ alone) is enough: the
    module reads what that folder's encoder gives with its "!"-padded tokenizer."""
    path = sd2_text_dir if given == "folder" else sd2_text_dir / "text_encoder"
    module = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=path)
    expected = sd2_reference_embeddings(sd2_text_dir, [*PROMPTS, ""])
    torch.testing.assert_close(module.text.encode([*PROMPTS, ""]), expected, rtol=0, atol=1e-5)
    table = {p: expected[i : i + 1] for i, p in enumerate([*PROMPTS, ""])}
    by_object = sing_diffusers.load_module(oms_xl_dir, sdxl, text_encoder=ReadyEncoder(table))
    torch.testing.assert_close(start(sdxl, module), start(sdxl, by_object), rtol=0, atol=1e-5)


def test_an_sdxl_pipeline_as_the_text_of_a_2048_wide_module(sdxl, oms_mix_dir, sd2_built):
    """text_encoder=an SDXL pipeline gives its encode_prompt's prompt_embeds (what the module lends itself from the
    pipeline it runs with); an SD-2 pipeline cannot serve it."""
    given = sing_diffusers.load_module(oms_mix_dir, sdxl, text_encoder=sdxl)
    lent = sing_diffusers.load_module(oms_mix_dir, sdxl)
    assert lent.text is None
    torch.testing.assert_close(start(sdxl, given), start(sdxl, lent), rtol=0, atol=0)
    with pytest.raises(SingDiffusersError, match=r"StableDiffusionPipeline cannot serve as one for this module; use it "
                                                 r"with an SDXL pipeline"):
        sing_diffusers.load_module(oms_mix_dir, sdxl, text_encoder=sd2_built)
