"""A stand-in for an anomalib ONNX export, for the tests and the bench: exactly the export's contract
(input `input`, N × 3 × H × W RGB in [0, 1]; outputs `pred_score`, `pred_label`, `anomaly_map` and
`pred_mask`, normalised so that 0.5 is the threshold: anomalib's export_mixin.py and InferenceBatch,
https://github.com/open-edge-platform/anomalib/blob/main/src/anomalib/models/components/base/export_mixin.py),
with a trivial graph inside where a real export has PatchCore's or PaDiM's. It proves the runner
takes the contract unchanged; its speed is the runner's, not a real model's.
"""

from __future__ import annotations


def write(path, size: int = 64, crop: int | None = None) -> None:
    """An ONNX file with anomalib's export signature whose graph scores dark spots high. With
    `crop`, its pre-processing ends in a centre crop of that side, as PatchCore's or CFA's may
    (anomalib's `center_crop_size`; exported as ExportableCenterCrop): the map then covers only
    the centre `crop` × `crop` of the resized input."""
    import onnx
    from onnx import TensorProto, helper

    side = crop or size
    first = (size - side) // 2
    nodes = [
        helper.make_node("Slice", ["input", "crop_start", "crop_end", "crop_axes"], ["cropped"]),
        helper.make_node("ReduceMean", ["cropped"], ["gray"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["gray"], ["around"], kernel_shape=[9, 9], pads=[4, 4, 4, 4]),
        helper.make_node("Sub", ["around", "gray"], ["darker"]),
        helper.make_node("Mul", ["darker", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "base"], ["raw"]),
        helper.make_node("Clip", ["raw", "zero", "one"], ["anomaly_map"]),
        helper.make_node("ReduceMax", ["anomaly_map"], ["max"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Identity", ["max"], ["pred_score"]),
        helper.make_node("Greater", ["pred_score", "half"], ["pred_label"]),
        helper.make_node("Greater", ["anomaly_map", "half"], ["pred_mask"]),
    ]
    constants = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("gain", 3.0), ("base", 0.2), ("zero", 0.0), ("one", 1.0), ("half", 0.5))
    ] + [
        helper.make_tensor("crop_start", TensorProto.INT64, [2], [first, first]),
        helper.make_tensor("crop_end", TensorProto.INT64, [2], [first + side, first + side]),
        helper.make_tensor("crop_axes", TensorProto.INT64, [2], [2, 3]),
    ]
    graph = helper.make_graph(
        nodes,
        "anomalib-export-contract",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, size, size])],
        [
            helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["batch_size"]),
            helper.make_tensor_value_info("pred_label", TensorProto.BOOL, ["batch_size"]),
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch_size", 1, side, side]),
            helper.make_tensor_value_info("pred_mask", TensorProto.BOOL, ["batch_size", 1, side, side]),
        ],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
