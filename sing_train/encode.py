"""Image folder → LatentDataset: every image through the frozen VAE (sing_train.frozen.FrozenVae) once.

x0 is the posterior MEAN times the scale factor, not a sample. The module's optimum is E[x0 | c]; a posterior sample
is the mean plus zero-mean noise, so it has the same expectation and only adds variance to the regression target
(and one fixed sample per image, stored once, would not even average that noise out over epochs).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from sing_train.frozen import FrozenVae
from sing_train.images import DatasetError, find_image_captions, load_image
from sing_train.latents import LatentDataset

# (images done, images in all)
EncodeProgress = Callable[[int, int], None]


def encode_image_folder(
    folder: str | Path,
    vae: FrozenVae,
    width: int,
    height: int,
    *,
    batch_size: int = 8,
    workers: int = 4,
    vae_name: str = "",
    on_progress: EncodeProgress | None = None,
    dtype: torch.dtype = torch.float32,
    rank: int = 0,
    world_size: int = 1,
) -> LatentDataset:
    """Latents [N, 4, height/8, width/8] (in `dtype`, on the CPU) with the captions, in path order.

    Images are decoded and resized by `workers` threads (Pillow releases the GIL) while the VAE runs. Process `rank`
    of `world_size` encodes only its own share, every world_size-th image from its rank on (in path order), so the
    processes of a launch split the folder between them instead of each encoding all of it.
    """
    folder = Path(folder)
    every = find_image_captions(folder)
    pairs = every[rank::world_size]
    if not pairs:
        raise DatasetError(
            f"{folder}: {len(every)} images for {world_size} processes, none for process {rank}; every process "
            "trains on its own share of the folder: add images or launch fewer processes"
        )
    factor = vae.downsampling
    if width % factor or height % factor:
        raise DatasetError(f"resolution {width}x{height}: this VAE needs sides that are multiples of {factor}")
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
    latents, done = [], 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:

        def submit(batch):  # the next batch is decoded while the VAE encodes this one; no more is held in memory
            return [pool.submit(load_image, pair.image, width, height) for pair in batch]

        pending = submit(batches[0])
        for index in range(len(batches)):
            images = torch.stack([future.result() for future in pending])
            pending = submit(batches[index + 1]) if index + 1 < len(batches) else []
            latents.append(vae.encode(images).to("cpu", dtype))
            done += len(images)
            if on_progress is not None:
                on_progress(done, len(pairs))
    stacked = torch.cat(latents)
    if not torch.isfinite(stacked).all():
        raise DatasetError(
            f"{folder}: the VAE produced NaN or inf latents; encode in float32 (--vae-dtype fp32: half precision "
            "overflows in some VAEs)"
        )
    return LatentDataset(
        stacked,
        [pair.caption for pair in pairs],
        [pair.image.relative_to(folder).as_posix() for pair in pairs],
        {"scale_factor": repr(vae.scale_factor), "resolution": f"{width}x{height}", "vae": vae_name},
    )
