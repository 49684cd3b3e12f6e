"""The sim2real command line and the pipeline that wires simulation, randomization, policies and ROS 2."""

__version__ = "0.1.0"
