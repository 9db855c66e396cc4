"""Annotated copies of photos: each face boxed and labelled, with the landmarks it was
aligned on."""

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ferlab.atomic import write_bytes_atomic
from ferlab.photos.analyze import PhotoResult

ANNOTATE_MAX_SIDE = 2048


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def annotate(img: Image.Image, result: PhotoResult, labels: list[str]) -> Image.Image:
    """A copy with each face boxed and labelled with its emotion and confidence, and the
    detector's landmarks where it gives them: the eyes the crop was levelled on (cyan, joined
    by the line made level), nose and mouth corners (white)."""
    scale = min(1.0, ANNOTATE_MAX_SIDE / max(img.size))
    out = img.convert("RGB")
    if scale < 1:
        out = out.resize((round(out.width * scale), round(out.height * scale)))
    draw = ImageDraw.Draw(out)
    for f in result.faces:
        b = f.box.scaled(scale)
        k = int(f.probs.argmax())
        width = max(2, round(min(out.size) / 200))
        draw.rectangle([b.x, b.y, b.x + b.w, b.y + b.h], outline=(255, 215, 0), width=width)
        font = _font(max(12, b.w // 7))
        text = f"{labels[k]} {f.probs[k]:.0%}"
        tb = draw.textbbox((b.x, b.y), text, font=font)
        top = b.y - (tb[3] - tb[1]) - 6 if b.y > (tb[3] - tb[1]) + 6 else b.y + b.h + 2
        draw.rectangle([b.x, top, b.x + tb[2] - tb[0] + 6, top + tb[3] - tb[1] + 6], fill=(0, 0, 0))
        draw.text((b.x + 3, top + 3 - tb[1] + b.y), text, fill=(255, 215, 0), font=font)
        if b.landmarks:
            r = max(2, round(b.w / 40))
            eyes = b.landmarks[:2]
            draw.line([eyes[0], eyes[1]], fill=(0, 220, 255), width=max(1, width // 2))
            for i, (x, y) in enumerate(b.landmarks):
                colour = (0, 220, 255) if i < 2 else (255, 255, 255)
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(0, 0, 0))
    return out


def save_jpeg(img: Image.Image, path: Path) -> Path:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    write_bytes_atomic(path, buf.getvalue())
    return path
