"""Calibration from recorded trajectories: rosbag2 bags -> episodes (commanded and measured joints at the control
rate), replay in a simulated scene, and SimOpt-style fitting of randomization ranges to them."""
