"""Bundles for the node's tests: a real exported Reach policy, and real ONNX graphs built to misbehave on purpose
(NaN, huge or mis-shaped joint targets, an image input) with the manifest a real export writes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from policies.bundle import MANIFEST, ONNX, sha256_file
from policies.manifest import CameraSpec, Manifest, Observation, ObservationInput, OutputSpec
from sim2real.export_run import export_run
from tests.quick_runs import quick_run


def trained_reach_bundle(out: Path, agent: str = "ppo", control: str = "joint") -> Path:
    """64 steps of an on-policy agent on Reach, exported (a real, if untrained, policy)."""
    run = quick_run(out / f"run-{agent}-{control}", task="reach", agent=agent, control=control, steps=64)
    return export_run(run, out / f"bundle-{agent}-{control}")


def scripted_bundle(
    template: Path,
    out: Path,
    offset_rad: float | list[float] = 0.0,
    n_targets: int = 7,
    image_hw: tuple[int, int] | None = None,
    action_value: float = 0.0,
) -> Path:
    """A bundle whose graph outputs joint_target_rad = measured joints + offset (n_targets values) and a constant
    action; `offset_rad` may be NaN or huge. With image_hw it also takes `image_scene` (H, W, 3) and declares a
    camera. The manifest is `template`'s (a real export, loaded as a Manifest), re-described and re-hashed."""
    import onnx
    from onnx import TensorProto, helper

    manifest = Manifest.from_dict(json.loads((template / MANIFEST).read_text()), str(template / MANIFEST))
    offset = np.broadcast_to(np.asarray(offset_rad, np.float32), (n_targets,)).astype(np.float32)
    inputs = [
        helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", 21]),
        helper.make_tensor_value_info("achieved_goal", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("desired_goal", TensorProto.FLOAT, ["batch", 3]),
    ]
    specs = [
        ObservationInput(name="observation", shape=(21,), normalization=None),
        ObservationInput(name="achieved_goal", shape=(3,), normalization=None),
        ObservationInput(name="desired_goal", shape=(3,), normalization=None),
    ]
    nodes = [
        helper.make_node("Constant", [], ["starts"], value=helper.make_tensor("s", TensorProto.INT64, [1], [0])),
        helper.make_node("Constant", [], ["ends"], value=helper.make_tensor("e", TensorProto.INT64, [1], [n_targets])),
        helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("a", TensorProto.INT64, [1], [1])),
        helper.make_node("Slice", ["observation", "starts", "ends", "axes"], ["q"]),
        helper.make_node(
            "Constant", [], ["offset"], value=helper.make_tensor("o", TensorProto.FLOAT, [n_targets], offset.tolist())
        ),
        helper.make_node("Add", ["q", "offset"], ["joint_target_rad"]),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
        helper.make_node(
            "Constant", [], ["act"], value=helper.make_tensor("c", TensorProto.FLOAT, [], [float(action_value)])
        ),
        helper.make_node("Mul", ["q", "zero"], ["q0"]),
    ]
    camera: CameraSpec | None = None
    if image_hw is None:
        nodes.append(helper.make_node("Add", ["q0", "act"], ["action"]))
    else:  # the image feeds the action (its mean times zero), so onnxruntime keeps the input
        h, w = image_hw
        inputs.append(helper.make_tensor_value_info("image_scene", TensorProto.FLOAT, ["batch", h, w, 3]))
        specs.append(ObservationInput(name="image_scene", shape=(h, w, 3), normalization=None))
        f = float(0.5 * h / np.tan(np.deg2rad(50.0) / 2))
        camera = CameraSpec(name="scene", width=w, height=h, k=((f, 0.0, w / 2), (0.0, f, h / 2), (0.0, 0.0, 1.0)))
        nodes += [
            helper.make_node("ReduceMean", ["image_scene"], ["img_mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Mul", ["img_mean", "zero"], ["img0"]),
            helper.make_node("Unsqueeze", ["img0", "axes"], ["img0_col"]),
            helper.make_node("Add", ["q0", "img0_col"], ["q0_img"]),
            helper.make_node("Add", ["q0_img", "act"], ["action"]),
        ]
    outputs = [
        helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", n_targets]),
        helper.make_tensor_value_info("joint_target_rad", TensorProto.FLOAT, ["batch", n_targets]),
    ]
    graph = helper.make_graph(nodes, "scripted", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    onnx.save(onnx.shape_inference.infer_shapes(model), str(out / ONNX))
    manifest = dataclasses.replace(
        manifest,
        observation=Observation(inputs=tuple(specs), normalization_epsilon=None, normalization_clip=None),
        state=(),
        camera=camera,
        env=dataclasses.replace(manifest.env, obs_mode="state" if camera is None else "pixels"),
        outputs=(
            OutputSpec(name="action", shape=(7,), units="normalised [-1, 1]"),
            OutputSpec(name="joint_target_rad", shape=(7,), units="rad", step_rad=0.05),
        ),
        onnx_sha256=sha256_file(out / ONNX),
    )
    (out / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2))
    return out
