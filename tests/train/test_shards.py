"""webdataset shards: split across processes × workers without overlap, bad samples skipped and counted, --min-size."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from shard_helpers import write_shards

from sing_train.shards import ShardBatches, ShardStream, epoch_order, expand_shards, is_shard_spec, slot_plan


def keys_of_epoch(urls, *, world_size, workers, seed=0, min_size=0):
    """Every slot's keys for one epoch (each slot stops after its part), read through ShardStream itself."""
    seen = {}
    for rank, worker in itertools.product(range(world_size), range(workers)):
        stream = ShardStream(urls, rank=rank, world_size=world_size, seed=seed, first_epoch=0, width=16, height=16,
                             min_size=min_size)
        stream_slots = world_size * workers
        shards, stride = slot_plan(len(urls), stream_slots, rank * workers + worker, epoch_order(len(urls), seed, 0))
        per_epoch = sum(4 for _ in shards) // stride  # 4 samples per shard in these tests
        fake = type("Info", (), {"num_workers": workers, "id": worker})
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sing_train.shards.get_worker_info", lambda fake=fake: fake)
            items = list(itertools.islice(iter(stream), per_epoch - (2 if min_size else 0)))
        seen[rank, worker] = [item[0].key for item in items]
    return seen


@pytest.mark.parametrize(("shards", "world_size", "workers"), [(8, 2, 2), (3, 2, 2), (1, 2, 1)])
def test_every_sample_reaches_exactly_one_slot_per_epoch(tmp_path, shards, world_size, workers):
    urls = [str(p) for p in write_shards(tmp_path, shards=shards, per_shard=4, size=16)]
    seen = keys_of_epoch(urls, world_size=world_size, workers=workers)
    everything = [k for keys in seen.values() for k in keys]
    assert len(everything) == len(set(everything))  # no sample twice
    if shards % (world_size * workers) == 0 or shards < world_size * workers:
        assert sorted(everything) == sorted(f"{s:02d}-{i:03d}" for s in range(shards) for i in range(4))
    assert all(seen.values())  # fewer shards than slots: every slot still gets samples


def test_shard_specs_expand_and_missing_shards_are_named(tmp_path):
    write_shards(tmp_path, shards=3, per_shard=1, size=8)
    pattern = str(tmp_path / "{00000..00002}.tar")
    assert is_shard_spec(pattern)
    assert is_shard_spec(tmp_path)  # a folder of .tar files
    assert is_shard_spec("pipe:curl -s https://example.com/0.tar")
    assert [u[-9:] for u in expand_shards(pattern)] == ["00000.tar", "00001.tar", "00002.tar"]
    assert expand_shards(tmp_path) == expand_shards(pattern)
    with pytest.raises(ValueError, match=r"1 of 4 shards do not exist: .*00003\.tar"):
        expand_shards(str(tmp_path / "{00000..00003}.tar"))


def test_corrupt_and_small_samples_are_skipped_and_counted(tmp_path):
    urls = [str(p) for p in write_shards(tmp_path, shards=1, per_shard=6, size=16, corrupt=("00-001",),
                                         small=("00-002",))]
    (tmp_path / "broken.tar").write_bytes(Path(urls[0]).read_bytes()[:700])  # cut inside the first member
    stream = ShardStream([*urls, str(tmp_path / "broken.tar")], rank=0, world_size=1, seed=0, first_epoch=0,
                         width=16, height=16, min_size=16)
    batches = ShardBatches(stream, batch_size=3, workers=0, caption_dropout=0.0,
                           encode_images=lambda pixels: pixels[:, :1, ::8, ::8], encode_text=fake_text,
                           device=torch.device("cpu"), record_keys=True)
    generator = torch.Generator().manual_seed(0)
    for index in range(3):
        x0, cond = batches(index, generator)
        assert x0.shape == (3, 1, 2, 2)
        assert cond.shape == (3, 77, 2)
    epoch_keys = batches.keys[:4]
    assert sorted(epoch_keys) == ["00-000", "00-003", "00-004", "00-005"]
    assert batches.skipped >= 2  # the corrupt PNG, the truncated tar (once per epoch read)
    assert batches.filtered >= 1  # the 8-px original


def test_a_stream_with_nothing_usable_says_so_instead_of_waiting(tmp_path):
    urls = [str(p) for p in write_shards(tmp_path, shards=1, per_shard=2, size=16, corrupt=("00-000", "00-001"))]
    stream = ShardStream(urls, rank=0, world_size=1, seed=0, first_epoch=0, width=16, height=16)
    with pytest.raises(ValueError, match="no usable sample in an epoch of 1 of 1 shards \\(2 skipped"):
        next(iter(stream))


def fake_text(prompts):
    return torch.stack([torch.full((77, 2), float(len(p))) for p in prompts])
