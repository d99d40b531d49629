"""What a TF Lite model says about itself: its labels and the normalisation its input expects.

A Vertex AI AutoML Edge TF Lite export is one `model.tflite`; "unlike previous export behavior in
AutoML Vision, exporting this format … does not produce a label file (dict.txt)", the labels are in
the file itself (https://cloud.google.com/vertex-ai/docs/export/export-edge-model, "Output files").
They travel as TF Lite metadata: a `TFLITE_METADATA` buffer in the model (a FlatBuffer of
`ModelMetadata`), and the associated files (the label file) in a zip appended to the model
(https://www.tensorflow.org/lite/models/convert/metadata; the schemas:
https://github.com/tensorflow/tflite-support/blob/master/tensorflow_lite_support/metadata/metadata_schema.fbs,
https://github.com/tensorflow/tensorflow/blob/master/tensorflow/compiler/mlir/lite/schema/schema.fbs).

This reads just what predict needs, with the `flatbuffers` runtime LiteRT itself depends on: the
output tensor's label file (TENSOR_AXIS_LABELS) and the input tensor's NormalizationOptions.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import flatbuffers
from flatbuffers import number_types as n

METADATA_NAME = "TFLITE_METADATA"
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions


@dataclass(frozen=True)
class ModelMetadata:
    labels: tuple[str, ...]  # the output's class names, in the order of its scores; () if none
    mean: tuple[float, ...] | None  # input normalisation: (pixel - mean) / std; None if not given
    std: tuple[float, ...] | None


class _Table:
    """A FlatBuffer table, read by field number (slot i is at vtable offset 4 + 2i)."""

    def __init__(self, buf: bytes, pos: int):
        self._t = flatbuffers.table.Table(buf, pos)

    def _offset(self, slot: int) -> int:
        return self._t.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str | None:
        o = self._offset(slot)
        return self._t.String(o + self._t.Pos).decode("utf-8") if o else None

    def scalar(self, slot: int, flags, default=0):
        o = self._offset(slot)
        return self._t.Get(flags, o + self._t.Pos) if o else default

    def table(self, slot: int) -> _Table | None:
        o = self._offset(slot)
        return _Table(self._t.Bytes, self._t.Indirect(o + self._t.Pos)) if o else None

    def tables(self, slot: int) -> list[_Table]:
        o = self._offset(slot)
        if not o:
            return []
        start = self._t.Vector(o)
        return [_Table(self._t.Bytes, self._t.Indirect(start + 4 * i)) for i in range(self._t.VectorLen(o))]

    def floats(self, slot: int) -> tuple[float, ...]:
        o = self._offset(slot)
        if not o:
            return ()
        start = self._t.Vector(o)
        return tuple(self._t.Get(n.Float32Flags, start + 4 * i) for i in range(self._t.VectorLen(o)))

    def bytes(self, slot: int) -> bytes:
        o = self._offset(slot)
        if not o:
            return b""
        start = self._t.Vector(o)
        return bytes(self._t.Bytes[start : start + self._t.VectorLen(o)])


def _root(buf: bytes) -> _Table:
    return _Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))


def _metadata_buffer(model: bytes) -> bytes | None:
    """The TFLITE_METADATA buffer of a TF Lite model (Model: buffers = 4, metadata = 6;
    Metadata: name = 0, buffer = 1; Buffer: data = 0)."""
    root = _root(model)
    buffers = root.tables(4)
    for entry in root.tables(6):
        if entry.string(0) == METADATA_NAME:
            index = entry.scalar(1, n.Uint32Flags)
            return buffers[index].bytes(0) if index < len(buffers) else None
    return None


def _label_file(metadata: _Table) -> str | None:
    """The output tensor's TENSOR_AXIS_LABELS file (ModelMetadata: subgraph_metadata = 3;
    SubGraphMetadata: output_tensor_metadata = 3; TensorMetadata: associated_files = 6;
    AssociatedFile: name = 0, type = 2)."""
    for subgraph in metadata.tables(3):
        for tensor in subgraph.tables(3):
            for file in tensor.tables(6):
                if file.scalar(2, n.Int8Flags) == TENSOR_AXIS_LABELS:
                    return file.string(0)
    return None


def _normalisation(metadata: _Table) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The input tensor's NormalizationOptions (SubGraphMetadata: input_tensor_metadata = 2;
    TensorMetadata: process_units = 4; ProcessUnit: options_type = 0, options = 1;
    NormalizationOptions: mean = 0, std = 1)."""
    for subgraph in metadata.tables(3):
        for tensor in subgraph.tables(2)[:1]:
            for unit in tensor.tables(4):
                if unit.scalar(0, n.Uint8Flags) == NORMALIZATION_OPTIONS:
                    options = unit.table(1)
                    if options is not None:
                        return options.floats(0), options.floats(1)
    return None


def read(model: bytes) -> ModelMetadata:
    """The labels and input normalisation a model carries; empty where it carries none."""
    labels: tuple[str, ...] = ()
    mean = std = None
    buffer = _metadata_buffer(model)
    if buffer:
        metadata = _root(buffer)
        wanted = _label_file(metadata)
        found = _normalisation(metadata)
        if found is not None:
            mean, std = found
        labels = _labels_in_zip(model, wanted)
    return ModelMetadata(labels, mean, std)


def _labels_in_zip(model: bytes, name: str | None) -> tuple[str, ...]:
    """The label file from the zip appended to the model (the associated files)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(model))
    except zipfile.BadZipFile:
        return ()
    with archive:
        names = archive.namelist()
        chosen = name if name in names else (names[0] if len(names) == 1 else None)
        if chosen is None:
            return ()
        text = archive.read(chosen).decode("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())
