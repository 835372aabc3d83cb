"""Images as model inputs: presets, resize / crop / pad, normalization, layout."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infertool.dtypes import is_float, numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.files import check_input
from infertool.inputs.arrays import check_size, human
from infertool.tensors import TensorSpec, format_shape
from infertool.text import shorten

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")



@dataclass(frozen=True)
class ImagePreprocess:
    """Image -> tensor: resize the shorter side, center-crop (or, with `pad`, resize to the crop's height
    keeping the aspect ratio and pad the right with zeros after normalizing, as PaddleOCR does; or,
    with `multiple` and no crop, round each side to a multiple), scale, normalize, order channels, lay out."""

    resize: int | None = 256
    crop: tuple[int, int] | None = (224, 224)
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    bgr: bool = False
    layout: str | None = None  # nchw | nhwc; None: read it off the model's input shape
    pad: bool = False
    multiple: int | None = None

    def to_dict(self) -> dict:
        return {
            "resize": self.resize, "crop": list(self.crop) if self.crop else None, "scale": self.scale,
            "mean": list(self.mean), "std": list(self.std), "bgr": self.bgr, "layout": self.layout,
            "pad": self.pad, "multiple": self.multiple,
        }



PRESETS = {
    "imagenet": ImagePreprocess(),
    "inception": ImagePreprocess(resize=342, crop=(299, 299), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    "unit": ImagePreprocess(resize=None, crop=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    "raw": ImagePreprocess(resize=None, crop=None, scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    # PaddleOCR (as RapidOCR feeds it): BGR, (x/255 - 0.5)/0.5; the detector takes sides rounded to a
    # multiple of 32, the orientation classifier 48x192 and the recogniser 48x320 text crops, right-padded
    "paddleocr": ImagePreprocess(resize=None, crop=None, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bgr=True, multiple=32),
    "paddleocr-cls": ImagePreprocess(resize=None, crop=(48, 192), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bgr=True, pad=True),
    "paddleocr-rec": ImagePreprocess(resize=None, crop=(48, 320), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bgr=True, pad=True),
}


def image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _image_layout(spec: TensorSpec, wanted: str | None) -> str:
    if wanted:
        return wanted
    if len(spec.shape) == 4 and spec.shape[1] in (1, 3):
        return "nchw"
    if len(spec.shape) == 4 and spec.shape[3] in (1, 3):
        return "nhwc"
    raise InfertoolError(
        f"cannot tell the image layout of input '{spec.name}' ({format_shape(spec.shape)})",
        hint="pass --layout nchw or --layout nhwc",
    )


def _resized(image, size: tuple[int, int]):
    """image.resize(size), its pixels sized before PIL allocates them (--crop 60000x60000 of a small photo)."""
    from PIL import Image

    check_size(f"an image resized to {size[0]}x{size[1]}", (size[1], size[0], 3), np.float32, hint="use a smaller --resize or --crop")
    return image.resize(size, Image.Resampling.BILINEAR)


def _geometry(image, pre: ImagePreprocess, resize: int | None, crop: tuple[int, int] | None):
    """Resize and crop (or fit for padding, or round to a multiple) a PIL image."""
    if resize:
        w, h = image.size
        factor = resize / min(w, h)
        image = _resized(image, (max(1, round(w * factor)), max(1, round(h * factor))))
    w, h = image.size
    if crop and pre.pad:  # the crop's height, the aspect ratio kept, at most the crop's width
        return _resized(image, (min(crop[1], math.ceil(crop[0] * w / h)), crop[0]))
    if crop:
        if w < crop[1] or h < crop[0]:
            image = _resized(image, (max(w, crop[1]), max(h, crop[0])))
            w, h = image.size
        left, top = (w - crop[1]) // 2, (h - crop[0]) // 2
        return image.crop((left, top, left + crop[1], top + crop[0]))
    if pre.multiple:
        step = pre.multiple
        return _resized(image, (max(step, round(w / step) * step), max(step, round(h / step) * step)))
    return image


def _padded(pixels: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros((crop[0], crop[1], pixels.shape[2]), np.float32)
    canvas[:, : pixels.shape[1]] = pixels
    return canvas


def load_images(files: list[Path], spec: TensorSpec, pre: ImagePreprocess) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    layout = _image_layout(spec, pre.layout)
    h_axis, w_axis = (2, 3) if layout == "nchw" else (1, 2)
    fixed = tuple(spec.shape[a] for a in (h_axis, w_axis))
    crop = fixed if all(isinstance(d, int) for d in fixed) else pre.crop
    resize = pre.resize
    if crop and pre.crop and crop != pre.crop and resize:
        resize = round(resize * crop[0] / pre.crop[0])  # keep the preset's resize/crop ratio
    arrays, size = [], None
    for file in files:
        check_input(file, "image")
        try:
            with Image.open(file) as image:
                check_size(f"image {shorten(file)}", (image.height, image.width, 3), np.float32, hint="give smaller images")
                pixels = np.asarray(_geometry(image.convert("RGB"), pre, resize, crop), dtype=np.float32)
        except Image.DecompressionBombError as exc:
            declared = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(declared.group(1)):,} pixels ({human(int(declared.group(1)) * 12)} as float32 RGB)" if declared else "too many pixels"
            raise InfertoolError(
                f"image {shorten(file)} declares {size}, more than is safe to decode (a decompression bomb?)",
                hint="give smaller images", detail=first_line(exc),
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InfertoolError(f"cannot read image {shorten(file)}: not an image file, or a damaged one", hint="give JPEG/PNG/BMP files", detail=first_line(exc)) from exc
        pixels = (pixels * pre.scale - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
        if pre.pad and crop:
            pixels = _padded(pixels, crop)
        if arrays and pixels.shape[:2] != size:
            raise InfertoolError(f"image {shorten(file)} is {pixels.shape[0]}x{pixels.shape[1]}, the first {size[0]}x{size[1]}", hint="give --crop so all images match")
        size = pixels.shape[:2]
        if pre.bgr:
            pixels = pixels[..., ::-1]
        arrays.append(pixels.transpose(2, 0, 1) if layout == "nchw" else pixels)
        check_size(f"{len(arrays)} images", (2 * len(arrays), *pixels.shape), np.float32, hint="give fewer or smaller images")  # 2: stacking copies
    return np.ascontiguousarray(np.stack(arrays)).astype(numpy_dtype(spec.dtype) if is_float(spec.dtype) else np.float32)
