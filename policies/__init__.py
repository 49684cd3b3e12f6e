"""Policies: the agents `sim2real train` offers (SB3 / sb3-contrib), their tuned settings, and later the
encoders, export and the bundle runtime. Never imports the simulator: the pipeline hands agents an env."""
