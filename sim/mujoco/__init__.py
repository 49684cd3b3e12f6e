"""MuJoCo engine backend."""
