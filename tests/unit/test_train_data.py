"""The pieces under `train`: image reading, the latents file, caption embeddings, batch order, the progress bar."""

from __future__ import annotations

import io

import pytest
import torch
from train_helpers import encode_png

from sing_core.progress import advance_to, progress_bar
from sing_train.batches import CaptionEmbeddings, LatentBatches
from sing_train.images import DatasetError, find_image_captions, load_image, parse_resolution
from sing_train.latents import LatentDataset, load_latents, save_latents


def fake_encoder(calls: list):
    """Caption → [2, 3] filled with a number derived from the text; records every call's captions."""

    def encode(texts):
        calls.append(list(texts))
        return torch.stack([torch.full((2, 3), float(sum(map(ord, t)) % 97)) for t in texts])

    return encode


def test_resolution_and_caption_reading(tmp_path):
    assert parse_resolution("512") == (512, 512)
    assert parse_resolution("768x512") == (768, 512)
    for bad in ("500", "0", "512x", "a", "8x8x8"):
        with pytest.raises(DatasetError, match="multiples of 8"):
            parse_resolution(bad)
    (tmp_path / "b.png").write_bytes(encode_png(1, 1, bytes(3)))
    (tmp_path / "b.txt").write_text("  two\n lines  \n", encoding="utf-8")
    (tmp_path / "a.PNG").write_bytes(encode_png(1, 1, bytes(3)))
    (tmp_path / "a.txt").write_bytes("café".encode())
    assert [(p.image.name, p.caption) for p in find_image_captions(tmp_path)] == [
        ("a.PNG", "café"),
        ("b.png", "two lines"),
    ]
    (tmp_path / "a.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(DatasetError, match="not UTF-8"):
        find_image_captions(tmp_path)


def test_images_are_scaled_to_cover_then_center_cropped(tmp_path):
    # 40 × 20: black left quarter, white right quarter, grey middle. Covering 16 × 16 scales to 32 × 16 and keeps
    # columns 8..23, i.e. the middle half of the original: grey, with the black/white edges just outside.
    width, height = 40, 20
    pixels = bytearray()
    for _ in range(height):
        for x in range(width):
            level = 0 if x < 10 else 255 if x >= 30 else 128
            pixels += bytes((level, level, level))
    (tmp_path / "wide.png").write_bytes(encode_png(width, height, pixels))
    image = load_image(tmp_path / "wide.png", 16, 16)
    assert image.shape == (3, 16, 16)
    assert image.dtype == torch.float32
    grey = 128 / 127.5 - 1
    assert abs(image[:, :, 4:12].mean().item() - grey) < 0.01
    assert image[:, :, 0].mean() > -0.6  # squashing instead of cropping would put black and white at the edges
    assert image[:, :, -1].mean() < 0.6
    tall = load_image(tmp_path / "wide.png", 8, 32)  # taller than the source: scaled ×1.6, the sides cut away more
    assert tall.shape == (3, 32, 8)
    assert abs(tall.mean().item() - grey) < 0.01
    assert tall.min() >= -1
    assert tall.max() <= 1


def test_latents_file_round_trip(tmp_path):
    dataset = LatentDataset(torch.randn(3, 4, 2, 2), ["a", "b", "ünï"], ["x.png", "y.png", "z.png"],
                            {"scale_factor": "0.18215", "resolution": "16x16"})  # fmt: skip
    loaded = load_latents(save_latents(tmp_path / "d.safetensors", dataset))
    assert torch.equal(loaded.latents, dataset.latents)
    assert loaded.captions == dataset.captions
    assert loaded.sources == dataset.sources
    assert loaded.info == dataset.info
    with pytest.raises(DatasetError, match=r"must end in \.safetensors"):
        save_latents(tmp_path / "d.pt", dataset)
    with pytest.raises(DatasetError, match="3 latents but 2 captions"):
        LatentDataset(torch.zeros(3, 4, 2, 2), ["a", "b"])


def test_caption_embeddings_cache_each_distinct_caption_once():
    calls = []
    captions = ["red", "blue", "red", "", "blue"]
    cached = CaptionEmbeddings(captions, fake_encoder(calls), cache=True)
    assert sorted(text for call in calls for text in call) == ["", "blue", "red"]
    live = CaptionEmbeddings(captions, fake_encoder([]), cache=False)
    items = torch.tensor([0, 1, 2, 3, 4])
    dropped = torch.tensor([False, True, False, False, False])
    expected = fake_encoder([])(["red", "", "red", "", "blue"])
    assert torch.equal(cached(items, dropped).float(), expected)
    assert torch.equal(live(items, dropped), expected)


def test_batches_visit_every_latent_once_per_epoch_whatever_the_batch_size():
    latents = torch.arange(5.0)[:, None, None, None].expand(5, 1, 2, 2)
    embeddings = CaptionEmbeddings([str(i) for i in range(5)], fake_encoder([]))
    batches = LatentBatches(latents, embeddings, batch_size=3, caption_dropout=0.0, seed=4)
    order = torch.cat([batches.items(b) for b in range(5)])  # 15 positions = 3 epochs of 5
    for epoch in range(3):
        assert sorted(order[5 * epoch : 5 * epoch + 5].tolist()) == list(range(5))
    assert not torch.equal(order[:5], order[5:10])  # a new order each epoch
    fresh = LatentBatches(latents, embeddings, batch_size=3, caption_dropout=0.0, seed=4)
    assert torch.equal(fresh.items(4), batches.items(4))  # stateless: a resumed run sees the same batches
    x0, cond = batches(2, torch.Generator().manual_seed(0))
    assert torch.equal(x0[:, 0, 0, 0], batches.items(2).float())
    assert cond.shape == (3, 2, 3)


def test_processes_take_disjoint_batches_that_together_are_the_one_process_order():
    latents = torch.arange(10.0)[:, None, None, None].expand(10, 1, 2, 2)
    embeddings = CaptionEmbeddings([str(i) for i in range(10)], fake_encoder([]))

    def batches(size, rank=0, world_size=1):
        return LatentBatches(latents, embeddings, batch_size=size, caption_dropout=0.0, seed=4, rank=rank,
                             world_size=world_size)

    one, ranks = batches(2), [batches(2, r, 2) for r in range(2)]
    steps = [torch.cat([ranks[0].items(b), ranks[1].items(b)]) for b in range(5)]  # 5 steps × 2 processes × 2
    assert torch.equal(torch.cat(steps), torch.cat([one.items(b) for b in range(10)]))
    # One epoch of 10 latents in 5 steps of 1 per process: each latent once, never on both processes.
    seen = [torch.cat([batches(1, r, 2).items(b) for b in range(5)]).tolist() for r in range(2)]
    assert set(seen[0]).isdisjoint(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(10))


def test_caption_dropout_rate_and_what_replaces_a_dropped_caption():
    latents = torch.zeros(50, 1, 1, 1)
    embeddings = CaptionEmbeddings(["x"] * 50, fake_encoder([]))
    empty, caption = fake_encoder([])(["", "x"])
    generator = torch.Generator().manual_seed(1)
    for rate in (0.0, 0.3, 1.0):
        batches = LatentBatches(latents, embeddings, batch_size=50, caption_dropout=rate, seed=0)
        conds = torch.cat([batches(i, generator)[1] for i in range(40)])
        is_empty = (conds == empty).all(dim=(1, 2))
        assert ((conds == caption).all(dim=(1, 2)) | is_empty).all()
        assert abs(is_empty.float().mean().item() - rate) < 0.03


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_counts_to_the_total_with_its_detail_in_a_log_and_on_a_terminal():
    log = io.StringIO()
    with progress_bar(None, "train", stream=log, unit="step", initial=5) as bar:  # a run resumed at step 5
        advance_to(bar, 5, 10, "loss 0.5000")
        advance_to(bar, 10, 10, "loss 0.2500")
    written = log.getvalue()
    last = written.rstrip("\n").split("\r")[-1]
    assert last.startswith("train: 100%")
    assert "10/10" in last
    assert "loss 0.2500" in last
    assert written.endswith("\n")
    assert written.count("\r") <= 3  # not a terminal: redrawn at most every 10 s (start, the end, the close)
    terminal = Terminal()
    with progress_bar(3, "encode", stream=terminal, unit="img") as bar:
        for done in (1, 2, 3):
            advance_to(bar, done)
            bar.refresh()
    frames = [frame for frame in terminal.getvalue().split("\r") if frame.strip()]
    assert [frame.split("|")[0].strip() for frame in frames[:1]] == ["encode:   0%"]
    assert any("2/3" in frame for frame in frames)
    assert "3/3" in frames[-1]
