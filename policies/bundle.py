"""The policy bundle runtime: load an exported policy (policy.onnx + manifest.json) and run it.

Imports numpy and onnxruntime only: no torch, no SB3, no pickle, nothing executed from the bundle. Loading checks
the manifest's schema version (2 upgrades), every field of it (policies.manifest.Manifest) and the ONNX file's
SHA-256; running checks every input's name, shape and finiteness, and every output's finiteness.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# BundleError lives beside the manifest (no import cycle); `from policies.bundle import BundleError` still works.
from policies.manifest import BundleError, Manifest, ObservationInput, StateSpec

MANIFEST = "manifest.json"
ONNX = "policy.onnx"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class PolicyBundle:
    """A loaded bundle. `run(inputs)` maps observation arrays to output arrays (action, joint targets)."""

    path: Path
    """The bundle folder."""
    manifest: Manifest
    """Its manifest, validated."""
    session: Any
    """The onnxruntime InferenceSession of policy.onnx."""

    @property
    def inputs(self) -> list[ObservationInput | StateSpec]:
        """Input specs: name, shape (without batch), dtype; the observation's first, the recurrent state's last."""
        return [*self.manifest.observation.inputs, *self.manifest.state]

    @property
    def recurrent(self) -> bool:
        """True when the policy carries a state (an LSTM's h and c) from one call to the next."""
        return bool(self.manifest.state)

    def initial_state(self, batch: int | None = None) -> dict[str, np.ndarray]:
        """The state at an episode start (zeros), as inputs for `run`; empty for feed-forward policies.

        Feed each call's `<name>_out` outputs back as the next call's `<name>` inputs; start again from this
        after a reset, a hold or a halt (the node resets it whenever it stops acting on the policy).
        """
        lead = () if batch is None else (batch,)
        return {spec.name: np.zeros((*lead, *spec.shape), np.float32) for spec in self.manifest.state}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the policy on one observation (arrays without batch dimension) or a batch (leading dimension B).

        Every declared input must be present with its shape and finite values; the outputs are checked finite
        (a non-finite output raises BundleError: callers hold, they never repair it).
        """
        feeds: dict[str, np.ndarray] = {}
        batched: bool | None = None
        names = [spec.name for spec in self.inputs]
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise BundleError(f"unknown input(s) {unknown}; the bundle takes {names}")
        for spec in self.inputs:
            name, shape = spec.name, spec.shape
            if name not in inputs:
                raise BundleError(f"input {name!r} is missing; the bundle takes {names}")
            dtype = np.dtype(spec.dtype)  # camera images travel as uint8
            x = np.asarray(inputs[name], dtype=dtype)
            is_batch = x.shape[1:] == shape and x.ndim == len(shape) + 1
            if not is_batch and x.shape != shape:
                raise BundleError(f"input {name!r} must have shape {shape} (or (B, {shape})), got {x.shape}")
            if batched is not None and batched != is_batch:
                raise BundleError("inputs mix batched and unbatched arrays")
            batched = is_batch
            if dtype.kind == "f" and not np.all(np.isfinite(x)):
                raise BundleError(f"input {name!r} holds non-finite values")
            feeds[name] = x if is_batch else x[None]
        outputs = [o.name for o in self.manifest.outputs]
        results = self.session.run(outputs, feeds)
        out = {}
        for name, value in zip(outputs, results):
            if not np.all(np.isfinite(value)):
                raise BundleError(f"output {name!r} is non-finite; do not act on it")
            out[name] = value if batched else value[0]
        return out


def load_bundle(path: str | Path) -> PolicyBundle:
    """Load and verify a bundle folder; BundleError names what is wrong."""
    import onnxruntime as ort

    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise BundleError(f"{root}: no {MANIFEST}; not a policy bundle")
    try:
        data = json.loads((root / MANIFEST).read_text())
    except ValueError as e:
        raise BundleError(f"{root / MANIFEST}: not valid JSON ({e})") from None
    # the schema version (2 upgrades), every field, nested: a wrong one fails here, not on the robot
    manifest = Manifest.from_dict(data, str(root / MANIFEST))
    onnx_path = root / ONNX
    if not onnx_path.is_file():
        raise BundleError(f"{root}: no {ONNX}")
    digest = sha256_file(onnx_path)
    if digest != manifest.onnx_sha256:
        raise BundleError(
            f"{onnx_path}: SHA-256 {digest[:16]}... does not match the manifest's "
            f"{manifest.onnx_sha256[:16]}...; the file was altered or belongs to another bundle"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a control loop: one thread, predictable latency
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return PolicyBundle(root, manifest, session)
