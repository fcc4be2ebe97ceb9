"""An image folder with captions: every image (png, jpg, jpeg, webp, bmp; subfolders too) has a .txt of the same stem.

Pillow decodes the images (JPEG and WebP need a real codec). It is no dependency of sing_core: it is imported only
here, when images are read, and the webui's environment has it; without it the error says how to get it or how to
encode elsewhere. The resizing is Pillow's too: its antialiased LANCZOS on uint8 is what A1111 uses and is several
times faster than resampling float tensors, which matters for the one pass over a large folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(ValueError):
    """Training data that cannot be used; the message names the file, the cause and the fix."""


@dataclass(frozen=True)
class ImageCaption:
    image: Path
    caption: str


def _listing(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    return f"{shown} (+{len(paths) - limit} more)" if len(paths) > limit else shown


def find_image_captions(folder: str | Path) -> list[ImageCaption]:
    """Every image under `folder` (sorted by path) with the text of the .txt beside it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder; pass the folder of images and .txt captions")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise DatasetError(
            f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)}, subfolders included); put the "
            "images there, each with a caption in a .txt file of the same name (cat.png + cat.txt)"
        )
    missing = [p for p in images if not p.with_suffix(".txt").is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: {len(missing)} of {len(images)} images have no caption file; missing: "
            f"{_listing([p.with_suffix('.txt') for p in missing])}. Write one .txt per image (the same "
            "name, the caption as plain UTF-8 text; an empty file trains that image as unconditional) or move those "
            "images out of the folder"
        )
    pairs = []
    for image in images:
        text_path = image.with_suffix(".txt")
        try:
            caption = text_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(f"{text_path}: not UTF-8 text ({error}); save the caption as UTF-8") from error
        pairs.append(ImageCaption(image, " ".join(caption.split())))  # one line, single spaces
    return pairs


def parse_resolution(text: str) -> tuple[int, int]:
    """'512' → (512, 512); '768x512' → width 768, height 512 (the webui's order). Sides are multiples of 8."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        width = height = -1
    if len(parts) > 2 or width <= 0 or height <= 0 or width % 8 or height % 8:
        raise DatasetError(
            f"--resolution {text!r}: give one side (512) or WIDTHxHEIGHT (768x512), positive multiples of 8 (the "
            "VAE turns 8 pixels into one latent)"
        )
    return width, height


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError as error:
        raise DatasetError(
            "reading images needs Pillow, which is not installed in this Python: `pip install pillow` (the webui's "
            "environment has it), or run `python -m sing_core encode` where Pillow is and train from the latents "
            "file it writes"
        ) from error
    return Image, ImageOps


def load_image(path: str | Path, width: int, height: int) -> torch.Tensor:
    """RGB [3, height, width] in [-1, 1]: scaled to cover width × height, then center-cropped (EXIF rotation applied).

    Transparency is dropped (Pillow's RGBA → RGB keeps the colour under transparent pixels)."""
    Image, ImageOps = _pillow()
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
            image = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(
            f"{path}: cannot read the image ({error}); re-save it as PNG or JPEG, or remove it"
        ) from error
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(height, width, 3)
    return pixels.permute(2, 0, 1).float() / 127.5 - 1.0


def image_size(source) -> int:
    """The shorter side of an image (a path or a file object) in pixels, read from its header."""
    Image, _ = _pillow()
    try:
        with Image.open(source) as opened:
            return min(opened.size)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"cannot read the image ({error})") from error
