"""Reading input files (npz, npy, `.pb` folders, images, audio), each through `files.check_input`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from infertool.dtypes import is_float
from infertool.errors import InfertoolError
from infertool.files import check_input
from infertool.inputs.arrays import read_npy, read_npz
from infertool.inputs.audio import AUDIO_PRESETS, AUDIO_SUFFIXES, AudioPreprocess, audio_files, load_audio
from infertool.inputs.images import IMAGE_SUFFIXES, ImagePreprocess, image_files, load_images
from infertool.inputs.tensor_files import pb_dir, read_pb_dir
from infertool.tensors import TensorSpec
from infertool.text import listing, shorten


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
        return read_pb_dir(pb_dir(path, len(specs)), specs)
    raise InfertoolError(f"unknown input file type '{shorten(path.suffix or path.name)}'", hint="give .npz, .npy, a .pb test-data dir, or images")


def sample_names(path: Path, count: int) -> list[str]:
    """The name of each of `count` samples read from `path`: media file names, else row indices."""
    kind = media_kind(path)
    if kind is not None and path.is_dir():
        return [f.name for f in (image_files(path) if kind == "image" else audio_files(path))][:count]
    return [path.name] if kind is not None else [str(i) for i in range(count)]
