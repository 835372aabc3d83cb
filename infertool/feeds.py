"""Input feeds: generated (random, zeros), .npz/.npy, ONNX `.pb` test-data dirs, images and audio."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool.audio import AUDIO_PRESETS, AUDIO_SUFFIXES, AudioPreprocess, audio_files, load_audio
from infertool.dtypes import is_float, numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.tensors import TensorSpec, bind_unnamed, check_names, format_shape, resolve_shapes

DEFAULT_INT_RANGE = (0, 100)
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


def _geometry(image, pre: ImagePreprocess, resize: int | None, crop: tuple[int, int] | None):
    """Resize and crop (or fit for padding, or round to a multiple) a PIL image."""
    from PIL import Image

    bilinear = Image.Resampling.BILINEAR
    if resize:
        w, h = image.size
        factor = resize / min(w, h)
        image = image.resize((max(1, round(w * factor)), max(1, round(h * factor))), bilinear)
    w, h = image.size
    if crop and pre.pad:  # the crop's height, the aspect ratio kept, at most the crop's width
        return image.resize((min(crop[1], math.ceil(crop[0] * w / h)), crop[0]), bilinear)
    if crop:
        if w < crop[1] or h < crop[0]:
            image = image.resize((max(w, crop[1]), max(h, crop[0])), bilinear)
            w, h = image.size
        left, top = (w - crop[1]) // 2, (h - crop[0]) // 2
        return image.crop((left, top, left + crop[1], top + crop[0]))
    if pre.multiple:
        step = pre.multiple
        return image.resize((max(step, round(w / step) * step), max(step, round(h / step) * step)), bilinear)
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
        try:
            with Image.open(file) as image:
                pixels = np.asarray(_geometry(image.convert("RGB"), pre, resize, crop), dtype=np.float32)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InfertoolError(f"cannot read image {file}: {first_line(exc)}", hint="give JPEG/PNG/BMP files") from exc
        pixels = (pixels * pre.scale - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
        if pre.pad and crop:
            pixels = _padded(pixels, crop)
        if arrays and pixels.shape[:2] != size:
            raise InfertoolError(f"image {file} is {pixels.shape[0]}x{pixels.shape[1]}, the first {size[0]}x{size[1]}", hint="give --crop so all images match")
        size = pixels.shape[:2]
        if pre.bgr:
            pixels = pixels[..., ::-1]
        arrays.append(pixels.transpose(2, 0, 1) if layout == "nchw" else pixels)
    return np.ascontiguousarray(np.stack(arrays)).astype(numpy_dtype(spec.dtype) if is_float(spec.dtype) else np.float32)


# ---------------------------------------------------------------- tensors on disk


def _pb_dir(path: Path) -> Path:
    """A `test_data_set_N` dir itself, or a model-zoo folder holding them (the first is used)."""
    if any(path.glob("input_*.pb")):
        return path
    sets = sorted(path.glob("test_data_set_*"))
    if sets and any(sets[0].glob("input_*.pb")):
        return sets[0]
    raise InfertoolError(f"{path} has no input_*.pb files", hint="use the test_data_set_N/input_K.pb layout, .npz, or images")


def read_pb_dir(path: Path, names: list[str], prefix: str = "input") -> dict[str, np.ndarray]:
    """Tensors from `<prefix>_K.pb`; each is keyed by its TensorProto name, else by the K-th name."""
    from onnx import TensorProto, numpy_helper

    files = sorted(path.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.rpartition("_")[2]) if p.stem.rpartition("_")[2].isdigit() else 0)
    tensors = {}
    for index, file in enumerate(files):
        proto = TensorProto()
        try:
            proto.ParseFromString(file.read_bytes())
            array = numpy_helper.to_array(proto)
        except Exception as exc:
            raise InfertoolError(f"{file} is not an ONNX TensorProto: {first_line(exc)}") from exc
        name = proto.name or (names[index] if index < len(names) else f"{prefix}_{index}")
        tensors[name] = array
    return tensors


def write_pb_dir(tensors: Mapping[str, np.ndarray], folder: Path, prefix: str = "output") -> None:
    from onnx import numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, array) in enumerate(tensors.items()):
        (folder / f"{prefix}_{index}.pb").write_bytes(numpy_helper.from_array(array, name).SerializeToString())


def media_kind(path: Path) -> str | None:
    """'image' or 'audio' for a media file or a folder of them, else None."""
    if path.suffix.lower() in IMAGE_SUFFIXES or (path.is_dir() and image_files(path)):
        return "image"
    if path.suffix.lower() in AUDIO_SUFFIXES or (path.is_dir() and audio_files(path)):
        return "audio"
    return None


def read_tensor_file(
    path: Path, specs: list[TensorSpec], pre: ImagePreprocess, audio: AudioPreprocess = AUDIO_PRESETS["waveform"], notes: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Inputs from a file or directory; checked against the model's specs by `check_feeds`."""
    names = [s.name for s in specs]
    if not path.exists():
        raise InfertoolError(f"inputs {path} not found", hint="give .npz, .npy, a .pb test-data dir, or images")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        except (OSError, ValueError) as exc:
            raise InfertoolError(f"cannot read {path}: {first_line(exc)}") from exc
    if path.suffix == ".npy":
        if len(names) != 1:
            raise InfertoolError(f"a .npy file holds one array, but the model has inputs {', '.join(names)}", hint="use .npz with one array per input name")
        try:
            return {names[0]: np.load(path, allow_pickle=False)}
        except (OSError, ValueError) as exc:
            raise InfertoolError(f"cannot read {path}: {first_line(exc)}") from exc
    if media_kind(path) == "audio":
        if len(specs) != 1:
            raise InfertoolError(f"audio feeds models with one input; this one has {', '.join(names)}", hint="give .npz for models with several inputs")
        return {specs[0].name: load_audio(audio_files(path), specs[0], audio, [] if notes is None else notes)}
    if media_kind(path) == "image":
        images = [s for s in specs if is_float(s.dtype) and len(s.shape) == 4]
        if len(specs) != 1 or not images:
            raise InfertoolError("images feed models with one 4-D float input", hint="give .npz for models with several inputs")
        files = image_files(path)
        return {images[0].name: load_images(files, images[0], pre)}
    if path.is_dir():
        return read_pb_dir(_pb_dir(path), names)
    raise InfertoolError(f"unknown input file type '{path.suffix}'", hint="give .npz, .npy, a .pb test-data dir, or images")


def check_feeds(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], source: str) -> None:
    """Names, dtypes and fixed dimensions of user-given inputs must match the model."""
    names = [s.name for s in specs]
    check_names(feeds, names)
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InfertoolError(f"{source} lacks input{'s' if len(missing) > 1 else ''} {', '.join(missing)}", hint=f"the model's inputs are: {', '.join(names)}")
    for spec in specs:
        array = feeds[spec.name]
        if array.dtype != numpy_dtype(spec.dtype):
            raise InfertoolError(
                f"input '{spec.name}' in {source} is {array.dtype}, the model wants {spec.dtype}",
                hint=f"save it as {spec.dtype} (e.g. array.astype('{spec.dtype}'))",
            )
        fixed_ok = len(array.shape) == len(spec.shape) and all(
            not isinstance(want, int) or want == got for want, got in zip(spec.shape, array.shape)
        )
        if not fixed_ok:
            raise InfertoolError(
                f"input '{spec.name}' in {source} has shape {format_shape(array.shape)}, "
                f"the model wants {format_shape(spec.shape)}"
            )


def fit_batch(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], batch: int) -> dict[str, np.ndarray]:
    """Repeat or cut user inputs along a dynamic axis 0 to `batch` rows."""
    fitted = {}
    for spec in specs:
        array = feeds[spec.name]
        if spec.shape and not isinstance(spec.shape[0], int) and array.shape[0] != batch:
            reps = -(-batch // array.shape[0])
            array = np.concatenate([array] * reps)[:batch] if reps > 1 else array[:batch]
        fitted[spec.name] = np.ascontiguousarray(array) if array.ndim else array  # ascontiguousarray makes a scalar 1-D
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
    audio: AudioPreprocess = AUDIO_PRESETS["waveform"]
    media: str | None = None  # image | audio: the kind of file the preset named by the user is for

    def to_dict(self) -> dict:
        kind = media_kind(self.path) if self.path else None
        return {
            "path": str(self.path) if self.path else None, "generator": None if self.path else self.generator,
            "shapes": {k or "": list(v) for k, v in self.shapes.items()}, "seed": self.seed,
            "int_range": list(self.int_range), "preprocess": self.preprocess.to_dict() if self.path else None,
            "audio": self.audio.to_dict() if kind == "audio" else None,
        }


def sample_names(path: Path, count: int) -> list[str]:
    """The name of each of `count` samples read from `path`: media file names, else row indices."""
    kind = media_kind(path)
    if kind is not None and path.is_dir():
        return [f.name for f in (image_files(path) if kind == "image" else audio_files(path))][:count]
    return [path.name] if kind is not None else [str(i) for i in range(count)]


class FeedSource:
    """Feeds for a model at any batch size; a file is read once."""

    def __init__(self, specs: list[TensorSpec], options: InputOptions):
        self.specs = specs
        self.options = options
        self.names = [s.name for s in specs]
        self.notes: list[str] = []  # what reading the file changed (resampled, mixed to mono, ...)
        self._file: dict[str, np.ndarray] | None = None
        if options.path is not None:
            kind = media_kind(options.path) if options.path.exists() else None
            if options.media and kind and kind != options.media:
                raise InfertoolError(f"--preprocess names an {options.media} preset, but {options.path} is {kind}", hint=f"drop --preprocess, or give {options.media} inputs")
            self._file = read_tensor_file(options.path, specs, options.preprocess, options.audio, self.notes)
            check_feeds(self._file, specs, str(options.path))
        self.shapes = bind_unnamed(options.shapes, self.names, "--input-shape")

    def samples(self) -> list[str]:
        """The name of each sample of the file inputs (see `sample_names`)."""
        if self._file is None:
            return []
        return sample_names(self.options.path, sample_count(self._file))

    def feeds(self, batch: int | None) -> dict[str, np.ndarray]:
        if self._file is not None:
            return fit_batch(self._file, self.specs, batch) if batch else dict(self._file)
        shapes = resolve_shapes(self.specs, self.shapes, batch)
        dtypes = {s.name: s.dtype for s in self.specs}
        return generated_feeds(shapes, dtypes, self.options.seed, self.options.int_range, self.options.generator == "zeros")


def sample_count(feeds: Mapping[str, np.ndarray]) -> int:
    """Rows of stacked samples (scalar inputs, such as a sample rate, have none)."""
    return min((a.shape[0] for a in feeds.values() if a.ndim), default=1)


def split_batches(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], size: int) -> list[dict[str, np.ndarray]]:
    """Cut stacked samples into batches of `size` rows (the last may be short), or of the model's
    fixed batch (repeating samples to fill one, dropping a remainder). The fixed batch is the first
    input's (a later input's fixed axis 0, e.g. [2, batch, 128], is no batch); scalars go whole."""
    count = sample_count(feeds)
    first = next((s for s in specs if s.shape), None)
    fixed = first.shape[0] if first is not None and isinstance(first.shape[0], int) else None
    if fixed is not None and count < fixed:
        feeds = {n: np.concatenate([a] * -(-fixed // count))[:fixed] if a.ndim else a for n, a in feeds.items()}
        count = fixed
    step = fixed or size
    stop = count - count % step if fixed else count
    return [{n: np.ascontiguousarray(a[i : i + step]) if a.ndim else a for n, a in feeds.items()} for i in range(0, stop, step)]
