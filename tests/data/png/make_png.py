#!/usr/bin/python3
"""Writes one picture (../digits/dkg-hand_7_0.pgm) as a PNG of each colour type and bit depth, for
tests/test_data.cpp: grey 8 and 16 bit, grey+alpha 8 and 16 bit, RGB, RGBA (the paper transparent) and palette.
Each must read as the same picture as the PGM.   /usr/bin/python3 tests/data/png/make_png.py
"""
import os

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
src = Image.open(os.path.join(HERE, "..", "digits", "dkg-hand_7_0.pgm")).convert("L")
src.save(os.path.join(HERE, "gray8.png"))
src.convert("I").point(lambda v: v * 257).convert("I;16").save(os.path.join(HERE, "gray16.png"))
Image.merge("LA", (src, Image.new("L", src.size, 255))).save(os.path.join(HERE, "gray_alpha.png"))
# 16-bit grey with alpha, written by hand: PIL has no such mode. Ink opaque, paper transparent.
import struct, zlib
w, h = src.size
raw = b"".join(b"\0" + b"".join(struct.pack(">HH", 0, (255 - src.getpixel((x, y))) * 257) for x in range(w))
              for y in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
with open(os.path.join(HERE, "gray16_alpha.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
Image.merge("RGB", (src, src, src)).save(os.path.join(HERE, "rgb.png"))
# ink opaque, paper fully transparent (and black underneath): read onto white paper
ink = src.point(lambda v: 255 - v)  # how much ink, 0..255
rgba = Image.merge("RGBA", (Image.new("L", src.size, 0), Image.new("L", src.size, 0), Image.new("L", src.size, 0), ink))
rgba.save(os.path.join(HERE, "rgba_transparent.png"))
src.convert("P", palette=Image.ADAPTIVE, colors=256).save(os.path.join(HERE, "palette.png"))
