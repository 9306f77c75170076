#!/usr/bin/python3
"""Writes small odd images and the pixels PIL gives for them, for ImageDecoderPilTest.

Run with the Python that has Pillow (checked with Pillow 9.4): /usr/bin/python3 scripts/make-pil-image-fixtures.py
Output: mugs-data/src/test/resources/pil/<file> plus, for every image, <file>.L.txt and <file>.RGB.txt, the
result of torchvision's loader, Image.open(f).convert("L" or "RGB") (for exif6.jpg only among the EXIF files), and
for exif2.jpg ... exif8.jpg <file>.exif_transpose.RGB.txt, the result of ImageOps.exif_transpose before
convert. A .txt holds "height width channels" on the first line, then one line per image row with the samples in
row-major, channel-last order.
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mugs-data", "src", "test", "resources", "pil")
W, H = 8, 6
rng = np.random.default_rng(13)


def smooth(channels, scale=255):
    """A gradient with some noise, so JPEG keeps it close."""
    y, x = np.mgrid[0:H, 0:W]
    planes = []
    for c in range(channels):
        v = (x * (20 + 9 * c) + y * (30 - 7 * c) + 25 * c) % 200 + 20 + rng.integers(0, 15, (H, W))
        planes.append(v * scale / 255.0)
    return np.stack(planes, axis=-1)


def png_raw(path, color_type, bit_depth, samples, palette=None, trns=None):
    """A PNG written by hand, for layouts PIL cannot save (16-bit RGB/RGBA/LA, 4-bit grey)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b""
    for r in samples:
        flat = r.reshape(-1)
        if bit_depth == 16:
            rows += b"\0" + flat.astype(">u2").tobytes()
        elif bit_depth == 8:
            rows += b"\0" + flat.astype(np.uint8).tobytes()
        else:
            per = 8 // bit_depth
            packed = bytearray()
            for i in range(0, len(flat), per):
                b = 0
                for j in range(per):
                    v = int(flat[i + j]) if i + j < len(flat) else 0
                    b |= v << (8 - bit_depth * (j + 1))
                packed.append(b)
            rows += b"\0" + bytes(packed)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        data += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        data += chunk(b"tRNS", bytes(trns))
    data += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def dump(path, img):
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    with open(path, "w") as f:
        f.write(f"{h} {w} {c}\n")
        for row in a:
            f.write(" ".join(str(int(v)) for v in row.reshape(-1)) + "\n")


def reference(name):
    path = os.path.join(OUT, name)
    for mode in ("L", "RGB"):
        with Image.open(path) as im:
            dump(os.path.join(OUT, f"{name}.{mode}.txt"), im.convert(mode))


def set_adobe_transform(data, transform):
    """Rewrites the colour transform byte of the Adobe APP14 segment (0 = CMYK, 2 = YCCK)."""
    i = data.index(b"\xff\xee\x00\x0eAdobe")
    return data[:i + 15] + bytes([transform]) + data[i + 16:]


def main():
    os.makedirs(OUT, exist_ok=True)
    grey16 = np.array(smooth(1, 300)[:, :, 0], dtype=np.uint16)   # about half the samples above 255
    grey16[0, :4] = [0, 255, 256, 65535]
    Image.fromarray(grey16, "I;16").save(os.path.join(OUT, "grey16.png"))
    png_raw(os.path.join(OUT, "rgb16.png"), 2, 16, (smooth(3) * 257 + rng.integers(0, 256, (H, W, 3))).astype(int))
    png_raw(os.path.join(OUT, "rgba16.png"), 6, 16, (smooth(4) * 257).astype(int))
    png_raw(os.path.join(OUT, "la16.png"), 4, 16, (smooth(2) * 257).astype(int))
    png_raw(os.path.join(OUT, "grey4.png"), 0, 4, (smooth(1)[:, :, 0] // 16).astype(int))
    png_raw(os.path.join(OUT, "grey1.png"), 0, 1, (smooth(1)[:, :, 0] > 110).astype(int))
    Image.fromarray(smooth(1)[:, :, 0].astype(np.uint8), "L").save(os.path.join(OUT, "grey.png"))
    Image.fromarray(smooth(4).astype(np.uint8), "RGBA").save(os.path.join(OUT, "rgba.png"))
    Image.fromarray(smooth(2).astype(np.uint8), "LA").save(os.path.join(OUT, "la.png"))
    Image.fromarray(smooth(3).astype(np.uint8), "RGB").save(os.path.join(OUT, "rgb.png"))

    palette = rng.integers(0, 256, 16 * 3).astype(np.uint8)
    indices = (smooth(1)[:, :, 0].astype(int) // 16) % 16
    p = Image.fromarray(indices.astype(np.uint8), "P")
    p.putpalette(palette.tolist())
    p.save(os.path.join(OUT, "palette.png"))
    p.save(os.path.join(OUT, "palette-transparent.png"), transparency=bytes([0, 64, 128] + [255] * 13))

    rgb = Image.fromarray(smooth(3).astype(np.uint8), "RGB")
    rgb.save(os.path.join(OUT, "rgb.jpg"), quality=95)
    Image.fromarray(smooth(1)[:, :, 0].astype(np.uint8), "L").save(os.path.join(OUT, "grey.jpg"), quality=95)
    cmyk = Image.fromarray(smooth(4).astype(np.uint8), "CMYK")
    cmyk.save(os.path.join(OUT, "cmyk.jpg"), quality=95)   # Pillow writes Adobe (inverted) CMYK
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    with open(os.path.join(OUT, "ycck.jpg"), "wb") as f:   # the same samples, read as YCCK
        f.write(set_adobe_transform(buf.getvalue(), 2))

    # larger, noisy, chroma-subsampled: where IDCT and upsampling differences would show
    noisy = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    Image.fromarray(noisy, "RGB").save(os.path.join(OUT, "noise.jpg"), quality=70)
    Image.fromarray(noisy, "RGB").save(os.path.join(OUT, "noise-progressive.jpg"), quality=70, progressive=True)
    Image.fromarray(np.concatenate([noisy, noisy[:, :, :1]], axis=2), "CMYK").save(
        os.path.join(OUT, "noise-cmyk.jpg"), quality=70)

    for orientation in range(2, 9):   # 6: rotate 90 degrees clockwise to view
        exif = Image.Exif()
        exif[0x0112] = orientation
        rgb.save(os.path.join(OUT, f"exif{orientation}.jpg"), quality=95, exif=exif.tobytes())

    for name in sorted(os.listdir(OUT)):
        if name.endswith((".png", ".jpg")) and (not name.startswith("exif") or name == "exif6.jpg"):
            reference(name)
    for orientation in range(2, 9):
        name = f"exif{orientation}.jpg"
        with Image.open(os.path.join(OUT, name)) as im:
            dump(os.path.join(OUT, f"{name}.exif_transpose.RGB.txt"), ImageOps.exif_transpose(im).convert("RGB"))


if __name__ == "__main__":
    main()
