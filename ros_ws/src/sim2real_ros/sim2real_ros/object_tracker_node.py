"""`sim2real-object-tracker`: finds the ArUco marker on the object in `camera/image_raw` and publishes the object's
pose on `object_pose` (geometry_msgs/PoseStamped, the robot's base frame, stamped with the image's stamp).

Intrinsics come from the sibling `camera/camera_info`, the camera-to-base extrinsics from the `camera_pose`
parameter (the optical frame in the base frame: x, y, z, qw, qx, qy, qz). Frames where the marker is missing,
partly hidden or badly fitted publish nothing (the policy node holds once poses go stale). `/diagnostics` at 1 Hz:
frames seen, poses published, the share tracked and the processing p99. Decisions live in
sim2real_ros.tracker_core; this node only moves messages. numpy, OpenCV and rclpy only (the robot extra).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from sim2real_ros.availability import missing_ros
from sim2real_ros.parameters import ParamSpec, declare_parameters, parameters_help
from sim2real_ros.tracker_core import LAYOUTS, TrackerSettings

SCRIPT = "sim2real-object-tracker"
DEFAULTS = TrackerSettings()
PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("camera_pose", "", "The camera's optical frame in the base frame: 'x,y,z,qw,qx,qy,qz' (m)"),
    ParamSpec(
        "camera_yaml",
        "",
        "camera.yaml from sim2real calibrate-camera: the extrinsics (instead of camera_pose) "
        "and the intrinsics camera_info must match",
    ),  # fmt: skip
    ParamSpec(
        "marker_id", DEFAULTS.marker_id, "ArUco id on the object's top (a cube's sides: the next 4)", range=(0, 100000)
    ),  # fmt: skip
    ParamSpec("marker_size_m", DEFAULTS.marker_size_m, "Printed marker side, border included (m)", range=(0.001, 2.0)),
    ParamSpec("dictionary", DEFAULTS.dictionary, "OpenCV ArUco dictionary name"),
    ParamSpec("layout", DEFAULTS.layout, f"Marked faces: {' or '.join(LAYOUTS)} (cube: top and four sides)"),
    ParamSpec("face_half_m", DEFAULTS.face_half_m, "Object centre to its marked faces (m)", range=(0.001, 1.0)),
    ParamSpec("base_frame", DEFAULTS.base_frame, "frame_id of object_pose (the frame camera_pose is given in)"),
    ParamSpec(
        "max_reprojection_px", DEFAULTS.max_reprojection_px, "Refuse fits worse than this (RMS px)", range=(0.01, 100.0)
    ),  # fmt: skip
)
DIAGNOSTICS_PERIOD_S = 1.0


def run(argv: list[str]) -> int:
    """Track until SIGINT or SIGTERM; 0, or 1 when the parameters are refused."""
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo, Image

    from sim.marker_pose import MarkerError
    from sim2real_ros.tracker_core import ObjectPose, ObjectTracker, parse_camera_pose, read_camera_yaml

    class TrackerNode(Node):
        def __init__(self) -> None:
            super().__init__("object_tracker")
            cfg = declare_parameters(self, PARAMETERS)
            if bool(cfg["camera_pose"]) == bool(cfg["camera_yaml"]):
                raise ValueError("give exactly one of camera_yaml (sim2real calibrate-camera's camera.yaml) and "
                                 "camera_pose (the optical frame in the base frame: x,y,z,qw,qx,qy,qz)")  # fmt: skip
            calibrated = read_camera_yaml(str(cfg["camera_yaml"])) if cfg["camera_yaml"] else None
            settings = TrackerSettings(
                marker_id=int(cfg["marker_id"]), marker_size_m=float(cfg["marker_size_m"]),
                dictionary=str(cfg["dictionary"]),
                layout=str(cfg["layout"]), face_half_m=float(cfg["face_half_m"]),
                base_frame=str(cfg["base_frame"]), max_reprojection_px=float(cfg["max_reprojection_px"]),
            )  # fmt: skip
            extrinsics = calibrated.base_from_optical if calibrated else parse_camera_pose(str(cfg["camera_pose"]))
            self.tracker = ObjectTracker(settings, extrinsics, calibrated)
            self.pub = self.create_publisher(PoseStamped, "object_pose", QoSProfile(depth=10))
            self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))
            # best available: reliable with a reliable camera driver (a best-effort 640x480 frame is lost whenever
            # one of its fragments is: 2 of 28 frames/s arrived here), best effort with a best-effort one
            images = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_AVAILABLE)
            self.create_subscription(Image, "camera/image_raw", self._on_image, images)
            self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, qos_profile_sensor_data)
            self.create_timer(DIAGNOSTICS_PERIOD_S, self._diagnostics)
            self.costs_s: list[float] = []
            self.last_reason = "no image yet"
            self.info_error: str | None = "no camera/camera_info yet"

        def _on_info(self, msg: Any) -> None:
            why = self.tracker.on_camera_info(msg.width, msg.height, list(msg.k), list(msg.d), msg.distortion_model,
                                              msg.header.frame_id)  # fmt: skip
            if why and why != self.info_error:
                self.get_logger().error(why)
            self.info_error = why

        def _on_image(self, msg: Any) -> None:
            stamp_s = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            out = self.tracker.on_image(msg.height, msg.width, msg.encoding, msg.step, msg.data,
                                        msg.header.frame_id, stamp_s)  # fmt: skip
            if not isinstance(out, ObjectPose):
                self.last_reason = out
                return
            self.costs_s = [*self.costs_s[-299:], out.processing_s]
            pose = PoseStamped()
            pose.header.stamp = msg.header.stamp
            pose.header.frame_id = self.tracker.settings.base_frame
            p, q = out.pos_m, out.quat_wxyz
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in p)
            o = pose.pose.orientation
            o.w, o.x, o.y, o.z = (float(v) for v in q)
            self.pub.publish(pose)
            self.last_reason = "tracking"

        def _diagnostics(self) -> None:
            c = self.tracker.counts
            level = DiagnosticStatus.OK if self.last_reason == "tracking" else DiagnosticStatus.WARN
            if self.info_error:
                level = DiagnosticStatus.ERROR
            p99 = float(np.percentile(self.costs_s, 99)) * 1e3 if self.costs_s else float("nan")
            values = {**c, "processing_ms_p99": f"{p99:.2f}"}
            status = DiagnosticStatus(level=level, name=f"{self.get_name()}: marker",
                                      message=self.info_error or self.last_reason,
                                      values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])  # fmt: skip
            msg = DiagnosticArray(status=[status])
            msg.header.stamp = self.get_clock().now().to_msg()
            self.diag_pub.publish(msg)

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        node = TrackerNode()
    except (ValueError, MarkerError) as e:
        print(f"{SCRIPT}: {e}", file=sys.stderr)
        rclpy.shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.get_logger().info(f"tracking marker {node.tracker.settings.marker_id} -> object_pose "
                           f"({node.tracker.settings.base_frame})")  # fmt: skip
    try:
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """The console script."""
    argv = list(sys.argv if argv is None else argv)
    problem = missing_ros(SCRIPT)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from rclpy.utilities import remove_ros_args

    parser = argparse.ArgumentParser(
        prog=SCRIPT,
        description="Track the ArUco marker on the object: camera/image_raw + camera/camera_info -> object_pose.",
        epilog=parameters_help(PARAMETERS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(remove_ros_args(argv)[1:])
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
