"""Writing result files atomically (temp file in the same folder, then rename), with the user's umask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from randomization.atomic_files import write_atomic

__all__ = ["write_atomic", "write_json"]


def write_json(path: str | Path, obj: Any) -> Path:
    """Write an object as indented JSON, atomically. Non-finite numbers are refused: NaN is not JSON."""
    return write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode())
