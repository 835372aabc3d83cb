"""Input feeds: generated (random, zeros), .npz/.npy, ONNX `.pb` test-data dirs, and images."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool.arrays import check_size, human, read_npy, read_npz
from infertool.dtypes import BY_ONNX, is_float, numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.files import check_input, read_bytes
from infertool.tensors import TensorSpec, bind_unnamed, check_names, format_shape, resolve_shapes
from infertool.text import listing, shorten

DEFAULT_INT_RANGE = (0, 100)
PROTOBUF_LIMIT = 2**31  # protobuf cannot parse a message of 2 GiB or more
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def generated_feeds(
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, str],
    seed: int = 0,
    int_range: tuple[int, int] = DEFAULT_INT_RANGE,
    zeros: bool = False,
) -> dict[str, np.ndarray]:
    """Seeded inputs: floats ~ N(0, 1), integers uniform in [low, high), booleans fair coins."""
    rng = np.random.default_rng(seed)
    feeds = {}
    need = sum(check_size(f"input '{n}'", shape, numpy_dtype(dtypes[n])) for n, shape in shapes.items())
    check_size("the generated inputs together", (need,), np.uint8)
    for name, shape in shapes.items():
        dtype = dtypes[name]
        target = numpy_dtype(dtype)
        if zeros:
            feeds[name] = np.zeros(shape, dtype=target)
        elif is_float(dtype):
            feeds[name] = rng.standard_normal(shape, dtype=np.float32).astype(target)
        elif dtype == "bool":
            feeds[name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            info = np.iinfo(target)
            low, high = max(int_range[0], info.min), min(int_range[1], info.max + 1)
            feeds[name] = rng.integers(low, high, size=shape, dtype=np.int64).astype(target)
    return feeds


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class ImagePreprocess:
    """Image -> tensor: resize the shorter side, center-crop, scale, normalize, order channels, lay out."""

    resize: int | None = 256
    crop: tuple[int, int] | None = (224, 224)
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    bgr: bool = False
    layout: str | None = None  # nchw | nhwc; None: read it off the model's input shape

    def to_dict(self) -> dict:
        return {
            "resize": self.resize, "crop": list(self.crop) if self.crop else None, "scale": self.scale,
            "mean": list(self.mean), "std": list(self.std), "bgr": self.bgr, "layout": self.layout,
        }


PRESETS = {
    "imagenet": ImagePreprocess(),
    "inception": ImagePreprocess(resize=342, crop=(299, 299), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    "unit": ImagePreprocess(resize=None, crop=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    "raw": ImagePreprocess(resize=None, crop=None, scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
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
                image = image.convert("RGB")
                if resize:
                    w, h = image.size
                    factor = resize / min(w, h)
                    image = image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR)
                if crop:
                    w, h = image.size
                    if w < crop[1] or h < crop[0]:
                        image = image.resize((max(w, crop[1]), max(h, crop[0])), Image.Resampling.BILINEAR)
                        w, h = image.size
                    left, top = (w - crop[1]) // 2, (h - crop[0]) // 2
                    image = image.crop((left, top, left + crop[1], top + crop[0]))
                pixels = np.asarray(image, dtype=np.float32)
        except Image.DecompressionBombError as exc:
            declared = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(declared.group(1)):,} pixels ({human(int(declared.group(1)) * 12)} as float32 RGB)" if declared else "too many pixels"
            raise InfertoolError(
                f"image {shorten(file)} declares {size}, more than is safe to decode (a decompression bomb?)",
                hint="give smaller images", detail=first_line(exc),
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InfertoolError(f"cannot read image {shorten(file)}: not an image file, or a damaged one", hint="give JPEG/PNG/BMP files", detail=first_line(exc)) from exc
        if arrays and pixels.shape[:2] != size:
            raise InfertoolError(f"image {shorten(file)} is {pixels.shape[0]}x{pixels.shape[1]}, the first {size[0]}x{size[1]}", hint="give --crop so all images match")
        size = pixels.shape[:2]
        pixels = (pixels * pre.scale - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
        if pre.bgr:
            pixels = pixels[..., ::-1]
        arrays.append(pixels.transpose(2, 0, 1) if layout == "nchw" else pixels)
        check_size(f"{len(arrays)} images", (2 * len(arrays), *pixels.shape), np.float32, hint="give fewer or smaller images")  # 2: stacking copies
    return np.ascontiguousarray(np.stack(arrays)).astype(numpy_dtype(spec.dtype) if is_float(spec.dtype) else np.float32)


# ---------------------------------------------------------------- tensors on disk


def _pb_dir(path: Path) -> Path:
    """A `test_data_set_N` dir itself, or a model-zoo folder holding them (the first is used)."""
    if any(path.glob("input_*.pb")):
        return path
    sets = sorted(path.glob("test_data_set_*"))
    if sets and any(sets[0].glob("input_*.pb")):
        return sets[0]
    raise InfertoolError(f"{shorten(path)} has no input_*.pb files", hint="use the test_data_set_N/input_K.pb layout, .npz, or images")


def read_pb_dir(path: Path, names: list[str], prefix: str = "input") -> dict[str, np.ndarray]:
    """Tensors from `<prefix>_K.pb`; each is keyed by its TensorProto name, else by the K-th name."""
    from onnx import TensorProto, numpy_helper

    files = sorted(path.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.rpartition("_")[2]) if p.stem.rpartition("_")[2].isascii() and p.stem.rpartition("_")[2].isdigit() else 0)
    tensors = {}
    for index, file in enumerate(files):
        proto = TensorProto()
        try:
            proto.ParseFromString(read_bytes(file, "tensor file", PROTOBUF_LIMIT))
            if proto.data_location == TensorProto.EXTERNAL:
                raise InfertoolError(f"{shorten(file)} keeps its data in another file", hint="save the tensor with its data inside (numpy_helper.from_array)")
            check_size(f"tensor {shorten(file)}", tuple(proto.dims), _proto_dtype(proto), hint="check the .pb file")
            array = numpy_helper.to_array(proto)
        except InfertoolError:
            raise
        except Exception as exc:
            raise InfertoolError(f"{shorten(file)} is not a readable ONNX TensorProto", hint="write it with onnx.numpy_helper.from_array", detail=first_line(exc)) from exc
        name = proto.name or (names[index] if index < len(names) else f"{prefix}_{index}")
        tensors[name] = array
    return tensors


def _proto_dtype(proto) -> np.dtype:
    found = BY_ONNX.get(proto.data_type)
    return np.dtype(np.uint8) if found is None or found.name == "string" else numpy_dtype(found.name)


def write_pb_dir(tensors: Mapping[str, np.ndarray], folder: Path, prefix: str = "output") -> None:
    from onnx import numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, array) in enumerate(tensors.items()):
        (folder / f"{prefix}_{index}.pb").write_bytes(numpy_helper.from_array(array, name).SerializeToString())


def read_tensor_file(path: Path, specs: list[TensorSpec], pre: ImagePreprocess) -> dict[str, np.ndarray]:
    """Inputs from a file or directory; checked against the model's specs by `check_feeds`."""
    names = [s.name for s in specs]
    if not os.path.exists(path):  # os.path: False for a name too long, where Path raises
        raise InfertoolError(f"inputs {shorten(path)} not found", hint="give .npz, .npy, a .pb test-data dir, or images")
    if path.suffix == ".npz":
        return read_npz(path)
    if path.suffix == ".npy":
        if len(names) != 1:
            raise InfertoolError(f"a .npy file holds one array, but the model has inputs {listing(names)}", hint="use .npz with one array per input name")
        return {names[0]: read_npy(path)}
    if path.suffix.lower() in IMAGE_SUFFIXES or (path.is_dir() and image_files(path)):
        images = [s for s in specs if is_float(s.dtype) and len(s.shape) == 4]
        if len(specs) != 1 or not images:
            raise InfertoolError("images feed models with one 4-D float input", hint="give .npz for models with several inputs")
        files = image_files(path)
        return {images[0].name: load_images(files, images[0], pre)}
    if path.is_dir():
        return read_pb_dir(_pb_dir(path), names)
    raise InfertoolError(f"unknown input file type '{shorten(path.suffix or path.name)}'", hint="give .npz, .npy, a .pb test-data dir, or images")


def check_feeds(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], source: str) -> None:
    """Names, dtypes and fixed dimensions of user-given inputs must match the model."""
    names = [s.name for s in specs]
    check_names(feeds, names)
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InfertoolError(f"{shorten(source)} lacks input{'s' if len(missing) > 1 else ''} {listing(missing)}", hint=f"the model's inputs are: {listing(names)}")
    for spec in specs:
        array = feeds[spec.name]
        if array.dtype != numpy_dtype(spec.dtype):
            raise InfertoolError(
                f"input '{shorten(spec.name)}' in {shorten(source)} is {array.dtype}, the model wants {spec.dtype}",
                hint=f"save it as {spec.dtype} (e.g. array.astype('{spec.dtype}'))",
            )
        if array.ndim and array.shape[0] == 0:
            raise InfertoolError(f"input '{shorten(spec.name)}' in {shorten(source)} holds no samples (shape {format_shape(array.shape)})", hint="give at least one sample")
        fixed_ok = len(array.shape) == len(spec.shape) and all(
            not isinstance(want, int) or want == got for want, got in zip(spec.shape, array.shape)
        )
        if not fixed_ok:
            raise InfertoolError(
                f"input '{shorten(spec.name)}' in {shorten(source)} has shape {shorten(format_shape(array.shape))}, "
                f"the model wants {shorten(format_shape(spec.shape))}",
                hint="save the input in the model's shape (dynamic dimensions may take any size)",
            )


def fit_batch(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], batch: int) -> dict[str, np.ndarray]:
    """Repeat or cut user inputs along a dynamic axis 0 to `batch` rows."""
    fitted = {}
    for spec in specs:
        array = feeds[spec.name]
        if spec.shape and not isinstance(spec.shape[0], int) and array.shape[0] != batch:
            check_size(f"input '{spec.name}' at batch {batch}", (batch, *array.shape[1:]), array.dtype)
            reps = -(-batch // array.shape[0])
            array = np.concatenate([array] * reps)[:batch] if reps > 1 else array[:batch]
        fitted[spec.name] = np.ascontiguousarray(array)
    return fitted


# ---------------------------------------------------------------- choosing the feeds


@dataclass(frozen=True)
class InputOptions:
    """Where inputs come from: a file (`path`), else generated `random` or `zeros` data."""

    path: Path | None = None
    generator: str = "random"
    shapes: Mapping[str | None, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    int_range: tuple[int, int] = DEFAULT_INT_RANGE
    preprocess: ImagePreprocess = PRESETS["imagenet"]

    def to_dict(self) -> dict:
        return {
            "path": str(self.path) if self.path else None, "generator": None if self.path else self.generator,
            "shapes": {k or "": list(v) for k, v in self.shapes.items()}, "seed": self.seed,
            "int_range": list(self.int_range), "preprocess": self.preprocess.to_dict() if self.path else None,
        }


class FeedSource:
    """Feeds for a model at any batch size; a file is read once."""

    def __init__(self, specs: list[TensorSpec], options: InputOptions):
        self.specs = specs
        self.options = options
        self.names = [s.name for s in specs]
        self._file: dict[str, np.ndarray] | None = None
        if options.path is not None:
            self._file = read_tensor_file(options.path, specs, options.preprocess)
            check_feeds(self._file, specs, str(options.path))
        self.shapes = bind_unnamed(options.shapes, self.names, "--input-shape")

    def feeds(self, batch: int | None) -> dict[str, np.ndarray]:
        if self._file is not None:
            return fit_batch(self._file, self.specs, batch) if batch else dict(self._file)
        shapes = resolve_shapes(self.specs, self.shapes, batch)
        dtypes = {s.name: s.dtype for s in self.specs}
        return generated_feeds(shapes, dtypes, self.options.seed, self.options.int_range, self.options.generator == "zeros")


def sample_count(feeds: Mapping[str, np.ndarray]) -> int:
    """Samples stacked along axis 0; a model without batched inputs (none, or scalars) has one."""
    return min((a.shape[0] for a in feeds.values() if a.ndim), default=1)


def split_batches(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], size: int) -> list[dict[str, np.ndarray]]:
    """Cut stacked samples into batches of `size` rows (the last may be short), or of the model's
    fixed batch (repeating samples to fill one, dropping a remainder). Scalar inputs go to every batch."""
    count = sample_count(feeds)
    if not any(a.ndim for a in feeds.values()):
        return [dict(feeds)]
    fixed = next((s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int)), None)
    if fixed is not None and count < fixed:
        feeds = {n: np.concatenate([a] * -(-fixed // count))[:fixed] if a.ndim else a for n, a in feeds.items()}
        count = fixed
    step = fixed or size
    stop = count - count % step if fixed else count
    return [{n: np.ascontiguousarray(a[i : i + step]) if a.ndim else a for n, a in feeds.items()} for i in range(0, stop, step)]
