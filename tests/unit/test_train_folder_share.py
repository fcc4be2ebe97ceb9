"""An image folder under many processes: each encodes only its own share (sing_train.encode)."""

from __future__ import annotations

import pytest
import torch
from train_helpers import write_image_folder, write_sd1_checkpoint

import sing_train.encode as encode_module
from sing_train.encode import encode_image_folder
from sing_train.frozen import load_vae
from sing_train.images import DatasetError


def test_each_process_encodes_only_its_share_and_the_shares_make_the_folder(tmp_path, monkeypatch):
    images = tmp_path / "images"
    captions = write_image_folder(images)
    vae = load_vae(write_sd1_checkpoint(tmp_path / "tiny-sd1.safetensors"), "sd", torch.device("cpu"))
    whole = encode_image_folder(images, vae, 64, 64, workers=1)
    loaded = []
    real_load_image = encode_module.load_image
    monkeypatch.setattr(
        encode_module, "load_image", lambda path, *size: loaded.append(path) or real_load_image(path, *size)
    )
    shares = []
    for rank in range(4):  # 6 images over 4 processes: 2, 2, 1, 1
        loaded.clear()
        share = encode_image_folder(images, vae, 64, 64, workers=1, rank=rank, world_size=4)
        assert sorted(p.relative_to(images).as_posix() for p in loaded) == sorted(share.sources)  # read no other
        shares.append(share)
    assert [len(s.sources) for s in shares] == [2, 2, 1, 1]
    # disjoint, and together all of it
    assert sorted(source for s in shares for source in s.sources) == sorted(whole.sources)
    for share in shares:
        for source, latent, caption in zip(share.sources, share.latents, share.captions, strict=True):
            row = whole.sources.index(source)
            torch.testing.assert_close(latent, whole.latents[row])
            assert caption == whole.captions[row]
            assert caption in captions
    with pytest.raises(DatasetError, match="6 images for 7 processes, none for process 6"):
        encode_image_folder(images, vae, 64, 64, rank=6, world_size=7)
