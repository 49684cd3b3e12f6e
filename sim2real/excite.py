"""`sim2real excite`: a multisine excitation of the arm (sim2real_ros.exciter, run in this process) through the
policy node's command topics and safety gate, to record for calibration; starts from and returns to the current pose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim2real_ros.exciter_core import ExciteError, ExciteOptions, check_options

if TYPE_CHECKING:
    from sim2real_ros.exciter_core import ExciteSummary

__all__ = ["ExciteError", "ExciteOptions", "excite"]


def excite(options: ExciteOptions) -> ExciteSummary:
    """Run the excitation until done, a fault or SIGINT/SIGTERM (the summary's outcome says which; its exit_code is
    the command's). ExciteError before anything is sent: no ROS 2, a bad flag, an unsafe start pose."""
    from sim2real_ros.availability import INSTALL_HINT, ros_import_error

    error = ros_import_error()
    if error is not None:
        raise ExciteError(f"exciting the arm needs the [ros] extra: {INSTALL_HINT} ({error})")
    check_options(options)
    from sim2real_ros.exciter import run

    return run(options, ["sim2real excite"])
