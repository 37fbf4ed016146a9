#!/usr/bin/python3
"""Renders the non-MNIST digit pictures in this folder: each digit 0-9 in handwriting and
typewriter fonts from Debian's font packages, dark ink on a light page, at varied size,
placement, slant, stroke weight and blur, as a user would photograph or draw them.

    apt-get install python3-pil fonts-dkg-handwriting fonts-breip fonts-dancingscript \
        fonts-humor-sans fonts-kristi fonts-comic-neue fonts-gnutypewriter fonts-dejavu-core
    /usr/bin/python3 tests/data/digits/make_digits.py

Deterministic (seeded); writes <style>_<digit>_<k>.pgm (binary PGM) and digits.tsv
(file, word, style). The pictures are committed, so tests never need the fonts.
"""
import os
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FONTS = {  # style name: font file
    "dkg-hand": "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",
    "breip-hand": "/usr/share/fonts/truetype/breip/Breip.ttf",
    "dancing-script": "/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf",
    "humor-hand": "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf",
    "kristi-script": "/usr/share/fonts/truetype/kristi/Kristi.ttf",
    "comic": "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf",
    "typewriter": "/usr/share/fonts/truetype/gnutypewriter/GNUTypewriter.ttf",
    "mono": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
}
VARIANTS = 2  # pictures per font and digit


def render(font_path, digit, rng):
    size = 120                                       # drawn large, then scaled to the page
    font = ImageFont.truetype(font_path, size)
    w, h = rng.randint(40, 96), rng.randint(40, 96)  # the page, not square in general
    big = Image.new("L", (3 * size, 3 * size), 0)
    d = ImageDraw.Draw(big)
    stroke = rng.choice([1, 2, 4])                   # the pen's weight
    d.text((size, size), str(digit), fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    shear = rng.uniform(-0.25, 0.25)                 # slant either way
    big = big.transform(big.size, Image.AFFINE, (1, shear, -shear * big.size[1] / 2, 0, 1, 0), Image.BILINEAR)
    box = big.getbbox()
    glyph = big.crop(box)
    scale = rng.uniform(0.45, 0.85) * min(w, h) / max(glyph.size)  # the digit fills 45-85% of the page
    glyph = glyph.resize((max(1, round(glyph.size[0] * scale)), max(1, round(glyph.size[1] * scale))), Image.LANCZOS)
    page = Image.new("L", (w, h), 0)
    x = rng.randint(0, max(0, w - glyph.size[0]))   # anywhere on the page: off-centre
    y = rng.randint(0, max(0, h - glyph.size[1]))
    page.paste(glyph, (x, y))
    if rng.random() < 0.5:
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    paper, ink = rng.randint(200, 250), rng.randint(10, 70)  # dark ink on light paper
    return page.point(lambda v: round(paper + (ink - paper) * v / 255))


def main():
    rng = random.Random(20261129)
    rows = []
    for style, path in FONTS.items():
        for digit in range(10):
            for k in range(VARIANTS):
                name = f"{style}_{digit}_{k}.pgm"
                render(path, digit, rng).save(os.path.join(HERE, name))
                rows.append(f"{name}\t{WORDS[digit]}\t{style}")
    with open(os.path.join(HERE, "digits.tsv"), "w") as f:
        f.write("file\tword\tstyle\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
