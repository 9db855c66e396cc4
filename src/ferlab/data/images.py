"""Decoding image files of any common kind into 8-bit grayscale arrays."""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferlab.errors import FerlabError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm")


def is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def open_image(data: bytes, name: str, max_pixels: int = 100_000_000) -> Image.Image:
    """Open and fully decode an image, upright per its EXIF orientation.

    Raises FerlabError naming the file for anything that is not a complete image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > max_pixels:
                raise FerlabError(f"{name}: image too large ({img.width}x{img.height})")
            img.load()
        return ImageOps.exif_transpose(img)
    except FerlabError:
        raise
    except UnidentifiedImageError:
        raise FerlabError(f"{name}: not a readable image (no known image format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise FerlabError(f"{name}: image too large ({e})") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
    ) as e:
        raise FerlabError(f"{name}: not a readable image ({e})") from None


def gray_array(img: Image.Image) -> np.ndarray:
    """(H, W) uint8 luminance of any PIL mode: RGB(A), palette, CMYK, 16-bit, float."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") or a.max() > 255 else (0.0, 255.0)
        return np.clip(np.round((a - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as a viewer shows them on a white page.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def decode_gray(data: bytes, name: str, max_pixels: int = 100_000_000) -> np.ndarray:
    """Bytes of an image file -> (H, W) uint8 grayscale."""
    return gray_array(open_image(data, name, max_pixels))
