"""Decoding image files of any common kind into 8-bit grayscale arrays."""

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferlab.errors import FerlabError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm")


def is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


# Larger images are refused before decoding (decompression bombs).
MAX_PIXELS = 100_000_000


def open_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
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


def decode_gray(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of an image file -> (H, W) uint8 grayscale."""
    return gray_array(open_image(data, name, max_pixels))


def gray_image(image, bgr: bool = False) -> np.ndarray:
    """An image as ferlab reads it: (H, W) uint8 luminance, from a path, file bytes, a PIL
    image or a uint8 array ((H, W), (H, W, 1), (H, W, 3) RGB or BGR, (H, W, 4) RGBA)."""
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise FerlabError(f"{path}: no such image file")
        return gray_array(open_image(path.read_bytes(), str(path), MAX_PIXELS))
    if isinstance(image, bytes | bytearray | memoryview):
        return gray_array(open_image(bytes(image), "image bytes", MAX_PIXELS))
    if isinstance(image, Image.Image):
        return gray_array(image)
    if not isinstance(image, np.ndarray):
        raise FerlabError(
            "an image must be a path, the bytes of an image file, a PIL image or a numpy "
            f"array, not {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise FerlabError(
            f"a numpy image must hold uint8 pixels (0-255), not {image.dtype}; for floats in "
            "[0, 1] pass (image * 255).round().astype('uint8')"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise FerlabError(
            f"a numpy image must be (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA, not shape "
            f"{image.shape}"
        )
    if min(image.shape[:2]) == 0:
        raise FerlabError(f"the image is empty (shape {image.shape})")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise FerlabError(f"image too large ({image.shape[1]}x{image.shape[0]})")
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    channels = image[..., [2, 1, 0, *range(3, image.shape[2])]] if bgr else image
    mode = "RGB" if channels.shape[2] == 3 else "RGBA"
    return gray_array(Image.fromarray(np.ascontiguousarray(channels), mode))
