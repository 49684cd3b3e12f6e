"""Copies of exported bundles with their manifest edited, as older exports or hand edits leave them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def without_fields(bundle: Path, out: Path, *fields: str) -> Path:
    """A copy of `bundle` at `out` whose manifest.json lacks the dotted `fields` (e.g. "robot.blocked_finger_width_m");
    the ONNX file is untouched, so its SHA-256 still verifies."""
    shutil.copytree(bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for dotted in fields:
        *parents, key = dotted.split(".")
        node = manifest
        for p in parents:
            node = node[p]
        del node[key]
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out
