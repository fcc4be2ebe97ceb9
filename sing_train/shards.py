"""webdataset shards as img2dataset writes them (KEY.jpg|png|webp + KEY.txt [+ KEY.json]) or as `encode --shards`
writes them (KEY.sing.safetensors holding x0 and cond, + KEY.txt), streamed to many processes and workers.

Split: the G = processes × workers reading slots each take their own part of every epoch. Each epoch shuffles the
shard list with (seed, epoch), the same on every slot; with at least G shards slot g reads shards g, g + G, … of that
order; with fewer, every slot reads every shard and keeps the samples whose running index i has i mod G = g (each
shard is then read G times, cheap where shards are few). Either way no sample reaches two slots in an epoch. The
stream never ends (epoch after epoch), so processes never wait on each other at an epoch's end; --steps ends the run.

A sample that cannot be read (a corrupt image, a missing caption, a broken tar) is skipped and counted, never fatal;
one below --min-size (the .json's original_width/height, else width/height, else the image's) is filtered and
counted apart. Each batch carries its workers' running counts, so the main process sums them without another channel.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
ENCODED_EXTENSION = "sing.safetensors"  # tensors "x0" [4, h, w] and "cond" [77, D]
SHUFFLE_STRIDE = 1_000_003


class ShardError(ValueError):
    """Shards that cannot be found or used at all (one bad sample is skipped instead)."""


class SkipSample(Exception):  # noqa: N818 - a signal, not a failure: the sample is counted and skipped
    """This sample cannot be used; the stream counts it and goes on."""


def is_shard_spec(data: str | Path) -> bool:
    text = str(data)
    if text.startswith(("pipe:", "http://", "https://")) or "{" in text or text.endswith(".tar"):
        return True
    path = Path(text)
    return path.is_dir() and any(path.glob("*.tar")) and not any(
        p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp") for p in path.iterdir()
    )


def expand_shards(data: str | Path) -> list[str]:
    """Brace patterns (/data/{00000..01023}.tar), `pipe:` commands, URLs, one .tar or a folder of .tar files."""
    from braceexpand import braceexpand

    text = str(data)
    if Path(text).is_dir():
        urls = sorted(str(p) for p in Path(text).glob("*.tar"))
    else:
        urls = [u for part in text.split("::") for u in braceexpand(part)]
    local_missing = [u for u in urls if not u.startswith(("pipe:", "http://", "https://")) and not Path(u).is_file()]
    if local_missing:
        shown = ", ".join(local_missing[:3]) + (f" (+{len(local_missing) - 3} more)" if len(local_missing) > 3 else "")
        raise ShardError(f"--data {text}: {len(local_missing)} of {len(urls)} shards do not exist: {shown}")
    if not urls:
        raise ShardError(f"--data {text}: no shards; pass .tar files, a {{00000..00099}} pattern or a pipe: command")
    return urls


def slot_plan(shard_count: int, slots: int, slot: int, order: list[int]) -> tuple[list[int], int]:
    """(the shards this slot reads, in this epoch's order; the sample stride it keeps: 1, or slots if shards are few)"""
    if shard_count >= slots:
        return order[slot::slots], 1
    return list(order), slots


def epoch_order(shard_count: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * SHUFFLE_STRIDE + epoch)
    return torch.randperm(shard_count, generator=generator).tolist()


@dataclass
class Decoded:
    key: str
    x0_or_pixels: torch.Tensor  # pixels [3, H, W] in [-1, 1] from images, x0 from encoded shards
    caption: str
    cond: torch.Tensor | None  # encoded shards only


def decode_sample(sample: dict, width: int, height: int, min_size: int) -> Decoded | None:
    """A decoded sample, None when --min-size filters it; SkipSample when it cannot be used."""
    key = sample.get("__key__", "?")
    caption = sample.get("txt")
    try:
        caption = " ".join(caption.decode("utf-8").split()) if caption is not None else None
    except UnicodeDecodeError as error:
        raise SkipSample(f"{key}: caption is not UTF-8") from error
    if ENCODED_EXTENSION in sample:
        from safetensors.torch import load

        try:
            tensors = load(sample[ENCODED_EXTENSION])
            return Decoded(key, tensors["x0"].float(), caption or "", tensors["cond"])
        except Exception as error:  # safetensors raises its own error types for damaged bytes
            raise SkipSample(f"{key}: unreadable {ENCODED_EXTENSION} ({error})") from error
    image = next((sample[e] for e in IMAGE_EXTENSIONS if e in sample), None)
    if image is None:
        raise SkipSample(f"{key}: no image ({', '.join(IMAGE_EXTENSIONS)}) in the sample")
    if caption is None:
        raise SkipSample(f"{key}: no .txt caption")
    if min_size and "json" in sample:
        try:
            meta = json.loads(sample["json"])
            side = min(meta.get("original_width") or meta["width"], meta.get("original_height") or meta["height"])
        except (ValueError, KeyError, TypeError):
            side = None
        if side is not None and side < min_size:
            return None
    from sing_train.images import DatasetError, image_size, load_image

    try:
        if min_size and image_size(io.BytesIO(image)) < min_size:
            return None
        pixels = load_image(io.BytesIO(image), width, height)
    except DatasetError as error:
        raise SkipSample(f"{key}: {error}") from error
    return Decoded(key, pixels, caption, None)


class ShardStream(IterableDataset):
    """Endless, split as the module says; yields (Decoded, worker id, skipped so far, filtered so far)."""

    def __init__(self, urls: list[str], *, rank: int, world_size: int, seed: int, first_epoch: int,
                 width: int, height: int, min_size: int = 0):
        self.urls, self.rank, self.world_size, self.seed = urls, rank, world_size, seed
        self.first_epoch, self.width, self.height, self.min_size = first_epoch, width, height, min_size

    def __iter__(self) -> Iterator[tuple[Decoded, int, int, int]]:
        from webdataset.tariterators import tarfile_samples

        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        slots, slot = self.world_size * workers, self.rank * workers + worker
        counts = {"skipped": 0, "filtered": 0}

        def count_and_continue(error: Exception) -> bool:  # webdataset's handler: True = go on
            counts["skipped"] += 1
            return True

        epoch = self.first_epoch
        while True:
            shards, stride = slot_plan(len(self.urls), slots, slot, epoch_order(len(self.urls), self.seed, epoch))
            index, yielded = -1, 0
            for shard in shards:
                for sample in tarfile_samples([{"url": self.urls[shard]}], handler=count_and_continue):
                    index += 1
                    if index % stride != slot % stride:
                        continue
                    try:
                        decoded = decode_sample(sample, self.width, self.height, self.min_size)
                    except SkipSample:
                        counts["skipped"] += 1
                        continue
                    if decoded is None:
                        counts["filtered"] += 1
                        continue
                    yielded += 1
                    yield decoded, worker, counts["skipped"], counts["filtered"]
            if yielded == 0:  # another epoch would find nothing either: say so rather than wait forever
                raise ShardError(
                    f"reading slot {slot} of {slots} (process {self.rank}, worker {worker}) found no usable sample in "
                    f"an epoch of {len(shards)} of {len(self.urls)} shards ({counts['skipped']} skipped as unreadable, "
                    f"{counts['filtered']} below --min-size {self.min_size}); check the shards, lower --min-size, or "
                    "use fewer processes × --data-workers than there are samples"
                )
            epoch += 1


def _collate(items):
    decoded = [item[0] for item in items]
    return {
        "keys": [d.key for d in decoded],
        "x0_or_pixels": torch.stack([d.x0_or_pixels for d in decoded]),
        "captions": [d.caption for d in decoded],
        "cond": None if decoded[0].cond is None else torch.stack([d.cond for d in decoded]),
        "workers": [item[1] for item in items],
        "skipped": [item[2] for item in items],
        "filtered": [item[3] for item in items],
    }


class ShardBatches:
    """sample_batch(index, generator) → (x0, cond) for the loop, from the shard stream of this process.

    Images are encoded by the frozen VAE as they arrive; captions are dropped (→ "") by the loop's generator and
    encoded, or, from encoded shards, a dropped caption's cond is replaced by the "" embedding."""

    def __init__(self, stream: ShardStream, *, batch_size: int, workers: int, caption_dropout: float,
                 encode_images: Callable | None, encode_text: Callable, device: torch.device,
                 record_keys: bool = False):
        self.loader = DataLoader(stream, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                                 persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
        self.iterator = None
        self.caption_dropout, self.encode_images, self.encode_text = caption_dropout, encode_images, encode_text
        self.device = device
        self._empty: torch.Tensor | None = None
        self.skipped_by_worker: dict[int, int] = {}
        self.filtered_by_worker: dict[int, int] = {}
        self.keys: list[str] | None = [] if record_keys else None

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_worker.values())

    @property
    def filtered(self) -> int:
        return sum(self.filtered_by_worker.values())

    def empty_cond(self) -> torch.Tensor:
        if self._empty is None:
            self._empty = self.encode_text([""])[0].to(self.device).clone()
        return self._empty

    def __call__(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.iterator is None:
            self.iterator = iter(self.loader)
        batch = next(self.iterator)
        for worker, skipped, filtered in zip(batch["workers"], batch["skipped"], batch["filtered"], strict=True):
            self.skipped_by_worker[worker] = max(self.skipped_by_worker.get(worker, 0), skipped)
            self.filtered_by_worker[worker] = max(self.filtered_by_worker.get(worker, 0), filtered)
        if self.keys is not None:
            self.keys += batch["keys"]
        size = len(batch["keys"])
        dropped = torch.rand(size, generator=generator) < self.caption_dropout
        if batch["cond"] is not None:  # encoded shards: x0 and cond as stored
            cond = batch["cond"].to(self.device, torch.float32)
            cond[dropped.to(self.device)] = self.empty_cond().float()
            return batch["x0_or_pixels"], cond
        # clone(): the frozen encoders may run in inference mode, whose tensors autograd refuses to save
        x0 = self.encode_images(batch["x0_or_pixels"]).to(torch.float32).clone()  # stays on the VAE's device
        captions = ["" if d else c for c, d in zip(batch["captions"], dropped.tolist(), strict=True)]
        return x0, self.encode_text(captions).to(self.device, torch.float32).clone()
