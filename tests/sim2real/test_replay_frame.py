"""The replayed camera's frame is a real render of the bundle's training task at the bundle's camera size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from policies.manifest import Manifest
from sim2real.deploy import DeployError, replay_frame

DATA = Path(__file__).resolve().parents[1] / "policies" / "data"


def test_the_replayed_frame_has_the_bundles_camera_size() -> None:
    manifest = Manifest.from_dict(json.loads((DATA / "manifest_v2_ppo_joint_pixels.json").read_text()))
    assert manifest.camera is not None
    frame = replay_frame(manifest, "mujoco")
    assert frame.shape == (manifest.camera.height, manifest.camera.width, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # a rendered scene, not a blank image
    state = Manifest.from_dict(json.loads((DATA / "manifest_v2_tqc_her_ee.json").read_text()))
    with pytest.raises(DeployError, match="needs a pixel policy"):
        replay_frame(state, "mujoco")
