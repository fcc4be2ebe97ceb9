"""Encoded shards: each image through the frozen VAE and its caption through the text encoder once, written as
webdataset shards of KEY.sing.safetensors (tensors "x0" [4, h, w] and "cond" [77, D]) + KEY.txt that the trainer
streams like image shards, without running either encoder again."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors.torch import save

from sing_train.frozen import FrozenText, FrozenVae
from sing_train.shards import ENCODED_EXTENSION, SkipSample, decode_sample, expand_shards, is_shard_spec


def _samples(source: str, width: int, height: int, counts: dict) -> Iterator[tuple[str, torch.Tensor, str]]:
    if is_shard_spec(source):
        from webdataset.tariterators import tarfile_samples

        def count(error: Exception) -> bool:
            counts["skipped"] += 1
            return True

        for url in expand_shards(source):
            for sample in tarfile_samples([{"url": url}], handler=count):
                try:
                    decoded = decode_sample(sample, width, height, 0)
                except SkipSample:
                    counts["skipped"] += 1
                    continue
                yield decoded.key, decoded.x0_or_pixels, decoded.caption
        return
    from sing_train.images import find_image_captions, load_image

    folder = Path(source)
    for pair in find_image_captions(folder):
        key = pair.image.relative_to(folder).with_suffix("").as_posix().replace("/", "_").replace(".", "_")
        yield key, load_image(pair.image, width, height), pair.caption


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def encode_to_shards(source: str, out: Path, vae: FrozenVae, text: FrozenText, *, width: int, height: int,
                     batch_size: int, per_shard: int, half: bool,
                     on_batch: Callable[[int], object] | None = None) -> tuple[int, int, int]:
    """(samples written, samples skipped, shards written)."""
    out.mkdir(parents=True, exist_ok=True)
    counts, written, shard, tar = {"skipped": 0}, 0, 0, None
    store = torch.float16 if half else torch.float32
    pending: list[tuple[str, torch.Tensor, str]] = []

    def flush() -> None:
        nonlocal written, shard, tar
        if not pending:
            return
        x0 = vae.encode(torch.stack([p[1] for p in pending])).to("cpu", store)
        cond = text.encode([p[2] for p in pending]).to("cpu", store)
        for (key, _, caption), latent, embedding in zip(pending, x0, cond, strict=True):
            if written % per_shard == 0:
                if tar is not None:
                    tar.close()
                tar = tarfile.open(out / f"{shard:05d}.tar", "w")  # noqa: SIM115 - closed at the shard's end
                shard += 1
            _add(tar, f"{key}.{ENCODED_EXTENSION}", save({"x0": latent.contiguous(), "cond": embedding.contiguous()}))
            _add(tar, f"{key}.txt", caption.encode("utf-8"))
            written += 1
        if on_batch is not None:
            on_batch(len(pending))
        pending.clear()

    try:
        for item in _samples(source, width, height, counts):
            pending.append(item)
            if len(pending) == batch_size:
                flush()
        flush()
    finally:
        if tar is not None:
            tar.close()
    return written, counts["skipped"], shard
