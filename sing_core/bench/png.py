"""A minimal PNG reader (standard library only) for the images a webui returns, and their mean grey level.

Scope: 8-bit samples, colour types 0 (grey), 2 (RGB), 3 (palette), 4 (grey + alpha) and 6 (RGBA), no interlace,
the five row filters of the PNG spec (None, Sub, Up, Average, Paeth). That is every PNG the webui writes (Pillow
saves 8-bit RGB or RGBA, non-interlaced, with per-row filters). Anything else is refused with a message that
says what came and what to change, never decoded wrongly.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> (samples per pixel, name)
COLOR_TYPES = {0: (1, "grey"), 2: (3, "RGB"), 3: (1, "palette"), 4: (2, "grey+alpha"), 6: (4, "RGBA")}


class PngError(ValueError):
    """A file this reader cannot decode; the message names the cause."""


@dataclasses.dataclass(frozen=True)
class RgbImage:
    width: int
    height: int
    rgb: bytes  # width·height·3 bytes, rows top to bottom; alpha is dropped (the webui's images are opaque)

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = 3 * (y * self.width + x)
        return self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise PngError(f"PNG: chunk {kind!r} is cut short (the file is truncated)")
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if crc != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise PngError(f"PNG: chunk {kind!r} fails its CRC check (the file is corrupt)")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise PngError("PNG: no IEND chunk (the file is truncated)")


def _paeth_row(line: bytearray, prior: bytes | bytearray, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        line[i] = (line[i] + predictor) & 0xFF


def unfilter(raw: bytes, width: int, height: int, bpp: int) -> bytes:
    """The image bytes from the decompressed IDAT stream: each row is one filter-type byte, then the filtered row."""
    stride = width * bpp
    if len(raw) < height * (stride + 1):
        raise PngError(f"PNG: image data holds {len(raw)} bytes, {height * (stride + 1)} expected for "
                       f"{width}×{height} at {bpp} bytes per pixel")
    out = bytearray(height * stride)
    prior = bytes(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub: add the byte one pixel to the left
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up: add the byte above
            line = bytearray((x + y) & 0xFF for x, y in zip(line, prior, strict=True))
        elif kind == 3:  # Average of left and above
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif kind == 4:
            _paeth_row(line, prior, bpp)
        elif kind != 0:
            raise PngError(f"PNG: row {row} has filter type {kind}; the spec defines 0 to 4 (the file is corrupt)")
        out[row * stride : (row + 1) * stride] = line
        prior = line
    return bytes(out)


def decode_png(data: bytes) -> RgbImage:
    """An 8-bit non-interlaced PNG as RGB bytes (grey is repeated on R, G, B; a palette is looked up)."""
    if data[: len(SIGNATURE)] != SIGNATURE:
        raise PngError(f"not a PNG (starts with {data[:8]!r})")
    header, palette, idat = None, None, []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise PngError("PNG: no IHDR chunk")
    width, height, depth, color_type, _, _, interlace = header
    if color_type not in COLOR_TYPES:
        raise PngError(f"PNG: colour type {color_type} is not defined by the spec")
    samples, name = COLOR_TYPES[color_type]
    if depth != 8:
        raise PngError(f"PNG: {depth}-bit {name} images are not supported (8-bit only; the webui writes 8-bit)")
    if interlace:
        raise PngError("PNG: interlaced (Adam7) images are not supported; save without interlacing")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as error:
        raise PngError(f"PNG: the image data does not decompress ({error})") from None
    return RgbImage(width, height, to_rgb(unfilter(raw, width, height, samples), color_type, palette))


def to_rgb(pixels: bytes, color_type: int, palette: bytes | None) -> bytes:
    """Unfiltered samples of one colour type as RGB bytes; alpha is dropped."""
    samples, _ = COLOR_TYPES[color_type]
    if color_type == 2:
        return pixels
    if color_type == 3:
        if palette is None:
            raise PngError("PNG: palette image without a PLTE chunk")
        if max(pixels, default=0) * 3 + 3 > len(palette):
            raise PngError("PNG: a pixel indexes past the end of the palette")
        return b"".join(palette[3 * i : 3 * i + 3] for i in pixels)
    count = len(pixels) // samples
    rgb = bytearray(3 * count)
    for channel in range(3):  # RGBA: R, G, B of each pixel; grey (+ alpha): the grey sample three times
        rgb[channel::3] = pixels[channel :: 4] if color_type == 6 else pixels[::samples]
    return bytes(rgb)


def mean_grey(image: RgbImage) -> float:
    """Mean of R, G and B over all pixels, on 0..255: the average-brightness reading of the paper's protocol."""
    return sum(image.rgb) / len(image.rgb) if image.rgb else 0.0


def decode_image(data: bytes, *, warn=None) -> RgbImage:
    """PNG through decode_png. JPEG and WebP (the webui's "File format for images" setting, which its API also
    uses) go through Pillow when it is installed, with a warning since lossy compression shifts grey levels;
    without Pillow they are refused with the setting to change."""
    if data[: len(SIGNATURE)] == SIGNATURE:
        return decode_png(data)
    kind = "JPEG" if data[:3] == b"\xff\xd8\xff" else "WebP" if data[8:12] == b"WEBP" else None
    if kind is None:
        raise PngError(f"the webui sent an image that is neither PNG, JPEG nor WebP (starts with {data[:12]!r})")
    try:
        from PIL import Image
    except ImportError:
        raise PngError(f"the webui sends {kind} images; set Settings > Saving images/grids > File format for images "
                       "to png (exact pixels), or install Pillow to read them") from None
    import io

    if warn:
        warn(f"the webui sends {kind} images (lossy; set Settings > Saving images/grids > File format for images to "
             "png for exact grey levels); decoding them with Pillow")
    with Image.open(io.BytesIO(data)) as opened:
        rgb = opened.convert("RGB")
        return RgbImage(rgb.width, rgb.height, rgb.tobytes())
