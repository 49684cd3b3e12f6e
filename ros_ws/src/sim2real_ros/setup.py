"""colcon's entry to the ament_python package (pip users get the same modules from the project's pyproject)."""

from glob import glob

from setuptools import setup

PACKAGE = "sim2real_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        # the project's deployment and calibration launch files (launch/ at the repository root, linked here)
        (
            f"share/{PACKAGE}/launch",
            glob("launch/deploy*.launch.yaml") + glob("launch/calibrate*.launch.yaml") + glob("launch/*.params.yaml"),
        ),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "sim2real-sim-arm = sim2real_ros.sim_arm_node:main",
            "sim2real-policy-node = sim2real_ros.policy_node:main",
            "sim2real-recorder = sim2real_ros.recorder:main",
            "sim2real-object-tracker = sim2real_ros.object_tracker_node:main",
        ]
    },
    maintainer="sim2real maintainers",
    description="ROS 2 side of sim2real: policy node, simulated arm, recorder",
    license="Apache-2.0",
)
