"""Input feeds: generated (random, zeros), .npz/.npy, ONNX `.pb` test-data dirs, images and audio."""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infertool.arrays import check_size, human, read_npy, read_npz
from infertool.audio import AUDIO_PRESETS, AUDIO_SUFFIXES, AudioPreprocess, audio_files, load_audio
from infertool.dtypes import BY_ONNX, from_numpy, is_float, numpy_dtype, numpy_lacks, widened
from infertool.errors import InfertoolError, first_line
from infertool.files import check_input, read_bytes
from infertool.tensors import TensorSpec, bind_unnamed, check_names, format_shape, resolve_shapes
from infertool.text import listing, shorten

DEFAULT_INT_RANGE = (0, 100)
# generated integer inputs whose name says what they hold: (name pattern, [low, high), what it is)
NAMED_INT_RANGES = (
    (re.compile(r"mask", re.I), (1, 2), "a mask: ones"),
    (re.compile(r"token_?type|segment", re.I), (0, 2), "token types"),
    (re.compile(r"^(sr|sample_?rate|sampling_?rate)$", re.I), (16000, 16001), "a sample rate"),
)


@dataclass(frozen=True)
class IntRanges:
    """[low, high) of generated integer inputs: the one given for an input by name, else what its
    name says it holds (masks, token types, sample rates), else the default (token ids)."""

    default: tuple[int, int] = DEFAULT_INT_RANGE
    given: tuple[tuple[str, tuple[int, int]], ...] = ()  # (input name, range) from --int-range NAME:LOW:HIGH

    def of(self, name: str) -> tuple[tuple[int, int], str]:
        """The range for input `name`, and why (empty for the default)."""
        for given, bounds in self.given:
            if given == name:
                return bounds, "--int-range"
        for pattern, bounds, what in NAMED_INT_RANGES:
            if pattern.search(name):
                return bounds, what
        return self.default, ""

    def describe(self, name: str, dtype: str) -> str:
        (low, high), why = self.of(name)
        values = f"{low}" if high == low + 1 else f"uniform {low}..{high - 1}"
        return f"{dtype} {values}" + (f" ({why})" if why else "")

    def to_dict(self) -> dict:
        return {"default": list(self.default), "inputs": {n: list(r) for n, r in self.given}}
PROTOBUF_LIMIT = 2**31  # protobuf cannot parse a message of 2 GiB or more
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def generated_feeds(
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, str],
    seed: int = 0,
    int_range: IntRanges = IntRanges(),
    zeros: bool = False,
    specs: Mapping[str, TensorSpec] | None = None,
) -> dict[str, Any]:
    """Seeded inputs: floats ~ N(0, 1), integers uniform in [low, high), booleans fair coins,
    strings the decimal text of such integers; a sequence holds one such tensor, an optional one is present."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    need = sum(check_size(f"input '{n}'", shape, numpy_dtype(dtypes[n])) for n, shape in shapes.items())
    check_size("the generated inputs together", (need,), np.uint8)
    for name, shape in shapes.items():
        value = _generated(rng, dtypes[name], shape, int_range.of(name)[0], zeros)
        container = specs[name].container if specs and name in specs else ()
        for kind in reversed(container):
            if kind == "sequence":
                value = [value]
            elif kind != "optional":
                raise InfertoolError(f"input '{name}' is a {specs[name].type_name}: infertool cannot generate or feed maps", hint="run the model from Python")
        feeds[name] = value
    return feeds


def _generated(rng: np.random.Generator, dtype: str, shape: tuple[int, ...], int_range: tuple[int, int], zeros: bool) -> np.ndarray:
    target = numpy_dtype(dtype)
    if dtype == "string":
        return np.full(shape, "", dtype=object) if zeros else rng.integers(*int_range, size=shape).astype(str).astype(object)
    if zeros:
        return np.zeros(shape, dtype=target)
    if is_float(dtype):
        return rng.standard_normal(shape, dtype=np.float32).astype(target)
    if dtype.startswith("complex"):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(target)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if numpy_lacks(dtype):
        import ml_dtypes

        info = ml_dtypes.iinfo(target)
    else:
        info = np.iinfo(target)
    low, high = max(int_range[0], int(info.min)), min(int_range[1], int(info.max) + 1)
    return rng.integers(low, high, size=shape, dtype=np.int64).astype(target)


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


# ---------------------------------------------------------------- tensors on disk


def _pb_dir(path: Path, inputs: int) -> Path:
    """A `test_data_set_N` dir itself, or a model-zoo folder holding them (the first is used);
    for a model without inputs, one with output_K.pb files alone."""
    wanted = "input_*.pb" if inputs else "output_*.pb"
    if any(path.glob(wanted)):
        return path
    sets = sorted(path.glob("test_data_set_*"))
    if sets and any(sets[0].glob(wanted)):
        return sets[0]
    raise InfertoolError(f"{shorten(path)} has no input_*.pb files", hint="use the test_data_set_N/input_K.pb layout, .npz, or images")


def _pb_file_specs(specs: Sequence[TensorSpec | str]) -> list[TensorSpec]:
    return [s if isinstance(s, TensorSpec) else TensorSpec(s, "", ()) for s in specs]


def read_pb_dir(path: Path, specs: Sequence[TensorSpec | str], prefix: str = "input") -> dict[str, Any]:
    """Values from `<prefix>_K.pb`, each keyed by its proto's name, else by the K-th spec's name.

    File K is read as the K-th spec's type says: a TensorProto, or a SequenceProto / OptionalProto
    for a sequence or optional (a bare name stands for a tensor).
    """
    specs = _pb_file_specs(specs)
    files = sorted(path.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.rpartition("_")[2]) if p.stem.rpartition("_")[2].isascii() and p.stem.rpartition("_")[2].isdigit() else 0)
    values = {}
    for index, file in enumerate(files):
        container = specs[index].container if index < len(specs) else ()
        try:
            name, value = _read_value(read_bytes(file, "tensor file", PROTOBUF_LIMIT), container, file)
        except InfertoolError:
            raise
        except Exception as exc:
            kind = {"sequence": "SequenceProto", "optional": "OptionalProto", "map": "MapProto"}.get(container[0] if container else "", "TensorProto")
            raise InfertoolError(f"{shorten(file)} is not a readable ONNX {kind}", hint="write it with onnx.numpy_helper", detail=first_line(exc)) from exc
        values[name or (specs[index].name if index < len(specs) else f"{prefix}_{index}")] = value
    return values


def _proto_dtype(proto) -> np.dtype:
    found = BY_ONNX.get(proto.data_type)
    return np.dtype(np.uint8) if found is None or found.name == "string" else numpy_dtype(found.name)


def _read_value(data: bytes, container: tuple[str, ...], file: Path) -> tuple[str, Any]:
    import onnx
    from onnx import numpy_helper

    kind = container[0] if container else "tensor"
    proto = {"sequence": onnx.SequenceProto, "optional": onnx.OptionalProto, "map": onnx.MapProto}.get(kind, onnx.TensorProto)()
    proto.ParseFromString(data)
    if kind == "tensor":  # refused before numpy allocates what the header declares
        if proto.data_location == onnx.TensorProto.EXTERNAL:
            raise InfertoolError(f"{shorten(file)} keeps its data in another file", hint="save the tensor with its data inside (numpy_helper.from_array)")
        check_size(f"tensor {shorten(file)}", tuple(proto.dims), _proto_dtype(proto), hint="check the .pb file")
    read = {"sequence": numpy_helper.to_list, "optional": numpy_helper.to_optional, "map": numpy_helper.to_dict}.get(kind, numpy_helper.to_array)
    return proto.name, read(proto)


def write_pb_dir(values: Mapping[str, Any], folder: Path, prefix: str = "output", specs: Sequence[TensorSpec] = ()) -> None:
    """`<prefix>_K.pb` per value, in ONNX's own types: a TensorProto of the tensor's element type
    (bfloat16, float8, int4 and strings included), a SequenceProto, an OptionalProto."""
    from onnx import numpy_helper

    containers = {s.name: s.container for s in specs}
    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, value) in enumerate(values.items()):
        kind = "optional" if value is None else (containers.get(name) or (("sequence",) if isinstance(value, list) else ("tensor",)))[0]
        write = {"sequence": numpy_helper.from_list, "optional": numpy_helper.from_optional}.get(kind)
        proto = write(value, name) if write else numpy_helper.from_array(np.asarray(value), name)
        (folder / f"{prefix}_{index}.pb").write_bytes(proto.SerializeToString())


def write_npz(arrays: Mapping[str, Any], path: Path) -> list[str]:
    """An `.npz` that `np.load(allow_pickle=False)` and `--inputs` read back, whatever the names:
    strings as unicode arrays; types numpy lacks widened (their values kept), which the notes returned say."""
    notes = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise InfertoolError(f"output '{name}' is not a tensor ({type(value).__name__}): .npz holds tensors", hint="save to a folder (-o outputs) for output_K.pb files")
            dtype = from_numpy(value.dtype)
            if dtype == "string":
                value = np.vectorize(_text, otypes=[str])(value) if value.size else value.astype(str)
            elif numpy_lacks(dtype):
                value = widened(value)
                notes.append(f"output '{name}' is {dtype}, which .npz cannot hold: saved as {value.dtype} (same values); a .pb folder keeps the type")
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return notes


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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
    if not os.path.exists(path):  # os.path: False for a name too long, where Path raises
        raise InfertoolError(f"inputs {shorten(path)} not found", hint="give .npz, .npy, a .pb test-data dir, or images")
    if not path.is_dir():
        check_input(path, "inputs", hint="give .npz, .npy, a .pb test-data dir, images or WAV files")  # never a FIFO or a device
    if path.suffix == ".npz":
        return read_npz(path)
    if path.suffix == ".npy":
        if len(names) != 1:
            raise InfertoolError(f"a .npy file holds one array, but the model has inputs {listing(names)}", hint="use .npz with one array per input name")
        return {names[0]: read_npy(path)}
    if media_kind(path) == "audio":
        if len(specs) != 1:
            raise InfertoolError(f"audio feeds models with one input; this one has {listing(names)}", hint="give .npz for models with several inputs")
        return {specs[0].name: load_audio(audio_files(path), specs[0], audio, [] if notes is None else notes)}
    if media_kind(path) == "image":
        images = [s for s in specs if is_float(s.dtype) and len(s.shape) == 4]
        if len(specs) != 1 or not images:
            raise InfertoolError("images feed models with one 4-D float input", hint="give .npz for models with several inputs")
        files = image_files(path)
        return {images[0].name: load_images(files, images[0], pre)}
    if path.is_dir():
        return read_pb_dir(_pb_dir(path, len(specs)), specs)
    raise InfertoolError(f"unknown input file type '{shorten(path.suffix or path.name)}'", hint="give .npz, .npy, a .pb test-data dir, or images")


def check_feeds(feeds: Mapping[str, Any], specs: list[TensorSpec], source: str) -> dict[str, Any]:
    """User-given inputs as the model takes them: names, dtypes and fixed dimensions must match.

    Text becomes string arrays; float or integer arrays for a type numpy lacks (bfloat16, float8,
    int4: .npz cannot hold those) are cast when every value survives the cast exactly."""
    names = [s.name for s in specs]
    check_names(feeds, names)
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InfertoolError(f"{shorten(source)} lacks input{'s' if len(missing) > 1 else ''} {listing(missing)}", hint=f"the model's inputs are: {listing(names)}")
    return {spec.name: _conform(feeds[spec.name], spec, spec.container, source) for spec in specs}


def _conform(value: Any, spec: TensorSpec, container: tuple[str, ...], source: str) -> Any:
    kind = container[0] if container else "tensor"
    if kind == "optional":
        return None if value is None else _conform(value, spec, container[1:], source)
    if kind == "sequence":
        if not isinstance(value, list):
            raise InfertoolError(f"input '{spec.name}' in {source} is one array, the model wants a {spec.type_name}", hint="give a test-data dir whose input_K.pb is a SequenceProto")
        return [_conform(v, spec, container[1:], source) for v in value]
    if kind != "tensor" or not isinstance(value, np.ndarray):
        raise InfertoolError(f"input '{spec.name}' in {source} is a {type(value).__name__}, the model wants a {spec.type_name}", hint="infertool feeds tensors, sequences and optionals")
    array = _typed(value, spec, source)
    if array.ndim and array.shape[0] == 0 and not (spec.ranked and spec.shape and spec.shape[0] == 0):  # unless the model asks for none
        raise InfertoolError(f"input '{shorten(spec.name)}' in {shorten(source)} holds no samples (shape {format_shape(array.shape)})", hint="give at least one sample")
    fixed_ok = not spec.ranked or (len(array.shape) == len(spec.shape) and all(
        not isinstance(want, int) or want == got for want, got in zip(spec.shape, array.shape)
    ))
    if not fixed_ok:
        raise InfertoolError(
            f"input '{shorten(spec.name)}' in {shorten(source)} has shape {shorten(format_shape(array.shape))}, "
            f"the model wants {shorten(format_shape(spec.shape))}",
            hint="save the input in the model's shape (dynamic dimensions may take any size)",
        )
    return array


def _typed(array: np.ndarray, spec: TensorSpec, source: str) -> np.ndarray:
    given, wanted = from_numpy(array.dtype), numpy_dtype(spec.dtype)
    if array.dtype == wanted:
        return array
    if spec.dtype == "string" and given == "string":
        return np.vectorize(_text, otypes=[object])(array) if array.size else array.astype(object)
    if numpy_lacks(spec.dtype) and array.dtype.kind in "biuf":
        cast = array.astype(wanted)
        if np.array_equal(widened(cast).astype(np.float64), array.astype(np.float64), equal_nan=True):
            return cast
        raise InfertoolError(f"input '{spec.name}' in {source} holds {given} values that {spec.dtype} cannot represent exactly", hint=f"round them to {spec.dtype} first")
    raise InfertoolError(
        f"input '{spec.name}' in {source} is {given}, the model wants {spec.dtype}",
        hint=f"save it as {spec.dtype} (e.g. array.astype('{spec.dtype}'))",
    )


def value_shape(value: Any) -> list | None:
    """A feed's shape for reports: a tensor's dims, a list of them for a sequence, None for an absent optional."""
    if value is None:
        return None
    if isinstance(value, list):
        return [value_shape(v) for v in value]
    return list(np.shape(value))


def fit_batch(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], batch: int) -> dict[str, np.ndarray]:
    """Repeat or cut user inputs along a dynamic axis 0 to `batch` rows."""
    fitted = {}
    for spec in specs:
        array = feeds[spec.name]
        if not spec.is_tensor:
            fitted[spec.name] = array
            continue
        if spec.shape and not isinstance(spec.shape[0], int) and array.shape[0] != batch:
            check_size(f"input '{spec.name}' at batch {batch}", (batch, *array.shape[1:]), array.dtype)
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
    int_range: IntRanges = IntRanges()
    preprocess: ImagePreprocess = PRESETS["imagenet"]
    audio: AudioPreprocess = AUDIO_PRESETS["waveform"]
    media: str | None = None  # image | audio: the kind of file the preset named by the user is for

    def describe(self, dtypes: Mapping[str, str]) -> dict[str, str]:
        """What each input (name -> dtype) is fed, in words: the file, or the generated values."""
        if self.path is not None:
            return {name: f"{dtype} from {shorten(self.path.name, 60)}" for name, dtype in dtypes.items()}
        return {name: _generated_text(name, dtype, self) for name, dtype in dtypes.items()}

    def to_dict(self) -> dict:
        kind = media_kind(self.path) if self.path else None
        return {
            "path": str(self.path) if self.path else None, "generator": None if self.path else self.generator,
            "shapes": {k or "": list(v) for k, v in self.shapes.items()}, "seed": self.seed,
            "int_range": self.int_range.to_dict(), "preprocess": self.preprocess.to_dict() if self.path else None,
            "audio": self.audio.to_dict() if kind == "audio" else None,
        }


def _generated_text(name: str, dtype: str, options: InputOptions) -> str:
    if options.generator == "zeros":
        return f"{dtype} zeros"
    if is_float(dtype) or dtype.startswith("complex"):
        return f"{dtype} N(0, 1)"
    if dtype == "bool":
        return "bool coin flips"
    return options.int_range.describe(name, dtype)


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
        self._file: dict[str, Any] | None = None
        if options.path is not None:
            kind = media_kind(options.path) if os.path.exists(options.path) else None  # os.path: False for a name too long
            if options.media and kind and kind != options.media:
                raise InfertoolError(f"--preprocess names an {options.media} preset, but {options.path} is {kind}", hint=f"drop --preprocess, or give {options.media} inputs")
            self._file = check_feeds(read_tensor_file(options.path, specs, options.preprocess, options.audio, self.notes), specs, str(options.path))
        self.shapes = bind_unnamed(options.shapes, self.names, "--input-shape")
        if self._file is not None:
            _check_given_shapes(self.shapes, self._file, options.path)

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
        return generated_feeds(
            shapes, dtypes, self.options.seed, self.options.int_range, self.options.generator == "zeros", {s.name: s for s in self.specs},
        )


def _check_given_shapes(shapes: Mapping[str, tuple[int, ...]], found: Mapping[str, Any], path: Path) -> None:
    """--input-shape beside input files: the files' arrays are used as they are (batch aside), so a
    shape that disagrees with them would be silently ignored."""
    for name, shape in shapes.items():
        array = found.get(name)
        if isinstance(array, np.ndarray) and array.ndim and tuple(array.shape[1:]) != tuple(shape[1:]):
            raise InfertoolError(
                f"--input-shape {name}:{format_shape(shape)} disagrees with {name} {format_shape(array.shape)} read from {shorten(path)}",
                hint="the file's arrays are used as they are: drop --input-shape, or give inputs of that shape",
            )


def sample_count(feeds: Mapping[str, np.ndarray]) -> int:
    """Samples stacked along axis 0; a model without batched inputs (none, or scalars such as a
    sample rate) has one."""
    return min((a.shape[0] for a in feeds.values() if isinstance(a, np.ndarray) and a.ndim), default=1)


def split_batches(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], size: int) -> list[dict[str, np.ndarray]]:
    """Cut stacked samples into batches of `size` rows (the last may be short), or of the model's
    fixed batch (repeating samples to fill one, dropping a remainder). The fixed batch is the first
    input's (a later input's fixed axis 0, e.g. [2, batch, 128], is no batch); scalars go whole."""
    count = sample_count(feeds)
    if not any(isinstance(a, np.ndarray) and a.ndim for a in feeds.values()):
        return [dict(feeds)]
    first = next((s for s in specs if s.shape), None)
    fixed = first.shape[0] if first is not None and isinstance(first.shape[0], int) else None
    if fixed is not None and count < fixed:
        feeds = {n: np.concatenate([a] * -(-fixed // count))[:fixed] if a.ndim else a for n, a in feeds.items()}
        count = fixed
    step = fixed or size
    stop = count - count % step if fixed else count
    return [{n: np.ascontiguousarray(a[i : i + step]) if a.ndim else a for n, a in feeds.items()} for i in range(0, stop, step)]
