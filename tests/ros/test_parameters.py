"""The nodes' shared conventions: command topics named once (and as DESIGN.md publishes them), parameters declared
from ParamSpecs (descriptor ranges by the default's type), and the one line a console script prints without ROS."""

from __future__ import annotations

import pytest

from sim2real_ros.availability import INSTALL_HINT, missing_ros_message
from sim2real_ros.controller_config import COMMAND_INTERFACES, COMMAND_TOPICS
from sim2real_ros.parameters import ParamSpec, descriptor, parameters_help


def test_command_topics_are_the_public_names() -> None:
    assert COMMAND_TOPICS == {
        "joint_trajectory": "joint_trajectory_controller/joint_trajectory",
        "forward_position": "forward_position_controller/commands",
    }
    assert COMMAND_INTERFACES == ("joint_trajectory", "forward_position")  # the default first


def test_descriptor_ranges_follow_the_default_type() -> None:
    pytest.importorskip("rcl_interfaces", reason="needs the [ros] extra")
    d = descriptor(ParamSpec("rate_hz", 1.0, "a rate", range=(0.0, 10.0)))
    assert d.read_only and d.description == "a rate" and not d.integer_range
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.0, 10.0)
    d = descriptor(ParamSpec("count", 3, "a count", read_only=False, range=(1, 100)))
    assert not d.read_only and not d.floating_point_range
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (1, 100)
    assert not descriptor(ParamSpec("name", "x", "a string")).floating_point_range
    with pytest.raises(TypeError, match="flag"):
        descriptor(ParamSpec("flag", True, "a bool", range=(0, 1)))


def test_help_lists_each_parameter_and_marks_the_changeable_ones() -> None:
    text = parameters_help([ParamSpec("a_s", 0.5, "first", read_only=False), ParamSpec("b", "x", "second")])
    assert "  a_s (default 0.5, changeable at run time): first" in text
    assert "  b (default 'x'): second" in text


def test_missing_ros_message_names_the_extra() -> None:
    assert missing_ros_message("sim2real-x") == f"sim2real-x needs the [ros] extra: {INSTALL_HINT}"
    assert "pip install 'sim2real[ros]'" in INSTALL_HINT
