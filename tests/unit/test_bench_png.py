"""sing_core.bench.png against Pillow: every filter type, every 8-bit colour type, and the refusals."""

import io
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from sing_core.bench.png import PngError, decode_image, decode_png, mean_grey


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered_png(pixels: np.ndarray, color_type: int, filters: list[int]) -> bytes:
    """An independent encoder that applies the given filter type to each row (cycling through the list)."""
    height, width = pixels.shape[:2]
    flat = pixels.reshape(height, -1).astype(int)
    bpp = flat.shape[1] // width
    rows, prior = [], np.zeros(flat.shape[1], int)
    for y in range(height):
        kind, line = filters[y % len(filters)], flat[y]
        out = []
        for i, x in enumerate(line):
            a = line[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            out.append((x - predictor) % 256)
        rows.append(bytes([kind, *out]))
        prior = line
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def pil_rgb(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def pil_png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def varied(shape, seed=0) -> np.ndarray:
    """Gradients plus noise: every filter predicts something different on it."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(shape[0]) * 7, np.arange(shape[1]) * 3)
    ramp = ramp.reshape(*shape[:2], *([1] * (len(shape) - 2)))
    return ((ramp + rng.integers(0, 40, shape)) % 256).astype(np.uint8)


@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4]])
@pytest.mark.parametrize(("color_type", "channels"), [(2, 3), (6, 4), (0, 1), (4, 2)])
def test_each_filter_and_colour_type_decodes_as_pillow_does(filters, color_type, channels):
    pixels = varied((9, 13, channels) if channels > 1 else (9, 13))
    data = filtered_png(pixels, color_type, filters)
    decoded = decode_png(data)
    assert (decoded.width, decoded.height) == (13, 9)
    assert decoded.rgb == pil_rgb(data)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P"])
def test_pngs_written_by_pillow_decode_as_pillow_reads_them(mode):
    rgb = Image.fromarray(varied((64, 48, 3), seed=1))
    image = rgb.convert(mode) if mode != "P" else rgb.quantize(colors=50)
    data = pil_png(image, optimize=True)
    assert decode_png(data).rgb == pil_rgb(data)


def test_a_webui_sized_image_and_its_mean_grey_level():
    pixels = varied((512, 512, 3), seed=2)
    data = pil_png(Image.fromarray(pixels), pnginfo=None)
    image = decode_png(data)
    assert image.rgb == pixels.tobytes()
    assert mean_grey(image) == pytest.approx(pixels.astype(np.float64).mean(), abs=1e-9)
    assert image.pixel(5, 7) == tuple(pixels[7, 5])


def test_mean_grey_of_flat_images():
    for value in (0, 37, 255):
        flat = np.full((8, 8, 3), value, np.uint8)
        assert mean_grey(decode_png(pil_png(Image.fromarray(flat)))) == value


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"GIF89a" + d[6:], "not a PNG"),
        (lambda d: d[:40], "truncated"),
        (lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], "CRC"),
    ],
)
def test_broken_files_are_refused_with_the_cause(mutate, message):
    data = pil_png(Image.fromarray(varied((8, 8, 3))))
    with pytest.raises(PngError, match=message):
        decode_png(mutate(data))


def test_16_bit_and_interlaced_images_are_refused_not_misread():
    sixteen = pil_png(Image.fromarray(varied((8, 8)).astype(np.uint16) * 257))
    with pytest.raises(PngError, match="16-bit grey images are not supported"):
        decode_png(sixteen)
    interlaced = bytearray(pil_png(Image.fromarray(varied((8, 8, 3)))))
    header = bytes(interlaced[12:29])
    header = header[:16] + b"\x01"  # interlace method 1 (Adam7)
    patched = bytes(interlaced[:8]) + chunk(header[:4], header[4:]) + bytes(interlaced[33:])
    with pytest.raises(PngError, match="interlaced"):
        decode_png(patched)


def test_a_bad_filter_type_is_reported():
    data = filtered_png(varied((4, 4, 3)), 2, [0])
    (length,) = struct.unpack(">I", data[33:37])  # the IDAT chunk follows the signature (8) and IHDR (25)
    raw = bytearray(zlib.decompress(data[41 : 41 + length]))
    raw[0] = 7
    broken = data[:33] + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    with pytest.raises(PngError, match="filter type 7"):
        decode_png(broken)


def test_jpeg_goes_through_pillow_with_a_warning_and_is_refused_without_it(monkeypatch):
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(buffer, format="JPEG", quality=95)
    warnings = []
    image = decode_image(buffer.getvalue(), warn=warnings.append)
    assert abs(mean_grey(image) - 200) < 2
    assert "JPEG" in warnings[0]
    assert "File format for images" in warnings[0]
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    with pytest.raises(PngError, match="set Settings > Saving images/grids > File format for images to png"):
        decode_image(buffer.getvalue())


def test_png_through_decode_image_never_needs_pillow(monkeypatch):
    data = pil_png(Image.fromarray(varied((8, 8, 3))))
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert decode_image(data).rgb == decode_png(data).rgb
