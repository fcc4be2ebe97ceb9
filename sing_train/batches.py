"""The batch source of a SingDiffusion run: latents x0 with their caption's CLIP embeddings, captions dropped at a rate.

Caption dropout trains the same module on the empty prompt "", whose optimum is E[x0] over the whole data set: the
unconditional branch ȳ_u that normalized guidance needs at sampling time.

Order: epoch e visits every latent once in the order torch.randperm(N) seeded by (seed, e); global batch g takes
positions [g·B, (g+1)·B) of those epochs laid end to end, and process r of W takes global batch b·W + r at its batch
b, so the processes see disjoint samples and together visit each latent once per epoch. It depends on nothing but
(seed, b, r, W), so a resumed run sees the same batches; the dropout draws come from the loop's generator, whose state
a checkpoint keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

EMPTY_CAPTION = ""
TEXT_BATCH = 64  # captions per text-encoder call when filling the cache

# prompts → text embeddings [B, T, D] (sing_core.text.ClipTextEncoder.encode)
EncodeText = Callable[[Sequence[str]], torch.Tensor]


class CaptionEmbeddings:
    """Embeddings by caption index; index len(captions) is the empty caption.

    cache=True encodes every distinct caption once up front and keeps them on the CPU in float16 (118 KiB each for
    CLIP-L; float16's rounding is far below the text encoder's own half-precision noise at sampling time). cache=False
    runs the text encoder for every batch instead, for caption sets too large to hold.
    """

    def __init__(
        self,
        captions: Sequence[str],
        encode: EncodeText,
        *,
        cache: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
    ):
        self.texts = sorted(set(captions) | {EMPTY_CAPTION})
        position = {text: i for i, text in enumerate(self.texts)}
        self.caption_ids = torch.tensor([position[c] for c in captions], dtype=torch.long)
        self.empty_id = position[EMPTY_CAPTION]
        self.encode: EncodeText | None = None if cache else encode  # a cache lets the text encoder go
        self.table: torch.Tensor | None = None
        if cache:
            parts = []
            for start in range(0, len(self.texts), TEXT_BATCH):
                parts.append(encode(self.texts[start : start + TEXT_BATCH]).to("cpu", torch.float16))
                if on_progress is not None:
                    on_progress(min(start + TEXT_BATCH, len(self.texts)), len(self.texts))
            self.table = torch.cat(parts)

    def __call__(self, items: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
        """Embeddings [B, T, D] for dataset items `items`, the empty caption where `dropped` is True."""
        ids = torch.where(dropped, self.empty_id, self.caption_ids[items])
        if self.encode is None:
            return self.table[ids]
        return self.encode([self.texts[i] for i in ids.tolist()])


class LatentBatches:
    """sample_batch(index, generator) → (x0 [B, C, h, w] float32 on the CPU, cond [B, T, D] on device in dtype)."""

    def __init__(
        self,
        latents: torch.Tensor,
        embeddings: CaptionEmbeddings,
        *,
        batch_size: int,
        caption_dropout: float,
        seed: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        rank: int = 0,
        world_size: int = 1,
        sources: list[str] | None = None,
    ):
        self.rank, self.world_size = rank, world_size
        self.sources = sources  # each latent's image (its path); given, the sources trained on collect in self.keys
        self.keys: list[str] | None = None if sources is None else []
        if not 0.0 <= caption_dropout <= 1.0:
            raise ValueError(f"--caption-dropout {caption_dropout}: a probability between 0 and 1 is needed")
        if batch_size < 1:
            raise ValueError(f"--batch-size {batch_size}: at least 1")
        self.latents, self.embeddings = latents, embeddings
        self.batch_size, self.caption_dropout, self.seed = batch_size, caption_dropout, seed
        self.device, self.dtype = torch.device(device), dtype
        self._epoch: tuple[int, torch.Tensor] | None = None

    def order(self, epoch: int) -> torch.Tensor:
        if self._epoch is None or self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch = (epoch, torch.randperm(len(self.latents), generator=generator))
        return self._epoch[1]

    def items(self, index: int) -> torch.Tensor:
        n = len(self.latents)
        global_index = index * self.world_size + self.rank
        positions = range(global_index * self.batch_size, (global_index + 1) * self.batch_size)
        return torch.stack([self.order(p // n)[p % n] for p in positions])

    def __call__(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        items = self.items(index)
        if self.keys is not None:
            self.keys += [self.sources[i] for i in items.tolist()]
        dropped = torch.rand(len(items), generator=generator) < self.caption_dropout
        cond = self.embeddings(items, dropped)
        return self.latents[items].float(), cond.to(self.device, self.dtype)
