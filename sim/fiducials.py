"""Printed patterns in the scene (ArUco markers, checkerboards): black cells on a white plate, as geometry.

A pattern is drawn with boxes, not a texture, so both engines show exactly the same print at exactly the pose the
scene says, and a tracker's estimate can be checked against the ground truth to the millimetre. Pure numpy; the
ArUco bit patterns come from OpenCV (imported only by `aruco_cells`).

Pattern frame (OpenCV's marker convention): origin at the centre of the printed surface, +x to the right of the
print, +y towards its top row, +z out of the surface towards the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]

#: The ArUco dictionary, id and printed side (black border included, m) of the marker on a task's object: the 4 cm
#: cube's top face holds the 3.2 cm marker with a 4 mm white margin.
OBJECT_MARKER_DICTIONARY = "DICT_4X4_50"
OBJECT_MARKER_ID = 0
OBJECT_MARKER_SIZE_M = 0.032
#: The plate (white) is PLATE_THICKNESS_M thick; the black cells stand CELL_THICKNESS_M proud of it, their tops
#: forming the printed surface (z = 0 of the pattern frame). A pattern placed on a face sits PATTERN_LIFT_M above it.
PLATE_THICKNESS_M = 0.0005
CELL_THICKNESS_M = 0.0002
PATTERN_LIFT_M = PLATE_THICKNESS_M + CELL_THICKNESS_M
WHITE_RGBA = (0.95, 0.95, 0.95, 1.0)
BLACK_RGBA = (0.02, 0.02, 0.02, 1.0)


@dataclass(frozen=True)
class PatternSpec:
    """A print attached to `parent` (a task object's name or a robot link), at `pos_m`/`quat` (wxyz) in its frame.

    `cells`: rows of the print, top row first, True = black; each cell is `cell_m` square. `margin_m`: white plate
    beyond the cells on every side.
    """

    name: str
    parent: str
    cells: tuple[tuple[bool, ...], ...]
    cell_m: float
    pos_m: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = (1.0, 0.0, 0.0, 0.0)
    margin_m: float = 0.0

    def __post_init__(self) -> None:
        widths = {len(r) for r in self.cells}
        if not self.cells or len(widths) != 1 or 0 in widths:
            raise ValueError(f"pattern {self.name!r}: cells must be a non-empty rectangle of rows")
        if not (self.cell_m > 0 and self.margin_m >= 0):
            raise ValueError(f"pattern {self.name!r}: cell_m must be > 0 and margin_m >= 0")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of cells."""
        return len(self.cells), len(self.cells[0])

    @property
    def plate_half_m(self) -> tuple[float, float]:
        """Half-extents (x, y) of the white plate."""
        rows, cols = self.shape
        return 0.5 * cols * self.cell_m + self.margin_m, 0.5 * rows * self.cell_m + self.margin_m


def aruco_cells(dictionary: str, marker_id: int) -> tuple[tuple[bool, ...], ...]:
    """The cells of ArUco marker `marker_id` of OpenCV's predefined `dictionary` (e.g. DICT_4X4_50), its one-cell
    black border included: (n + 2) rows of n + 2, top row first."""
    import cv2

    code = getattr(cv2.aruco, dictionary, None)
    if not dictionary.startswith("DICT_") or code is None:
        raise ValueError(f"unknown ArUco dictionary {dictionary!r} (OpenCV names such as DICT_4X4_50)")
    d = cv2.aruco.getPredefinedDictionary(code)
    if not 0 <= marker_id < d.bytesList.shape[0]:
        raise ValueError(f"marker id {marker_id} is not in {dictionary} (ids 0..{d.bytesList.shape[0] - 1})")
    side = d.markerSize + 2
    image = cv2.aruco.generateImageMarker(d, marker_id, side, borderBits=1)
    return tuple(tuple(bool(v < 128) for v in row) for row in image)


def checkerboard_cells(rows: int, cols: int) -> tuple[tuple[bool, ...], ...]:
    """A checkerboard of rows x cols squares, the top-left one black (OpenCV finds (rows-1) x (cols-1) corners)."""
    if rows < 2 or cols < 2:
        raise ValueError(f"a checkerboard needs at least 2 x 2 squares, got {rows} x {cols}")
    return tuple(tuple((r + c) % 2 == 0 for c in range(cols)) for r in range(rows))


def black_boxes(pattern: PatternSpec) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The black cells as few boxes: (centre (x, y), half-extents (x, y)) in the pattern frame, one box per run of
    black cells along a row."""
    rows, cols = pattern.shape
    s = pattern.cell_m
    x0, y0 = -0.5 * cols * s, 0.5 * rows * s  # the top-left corner of the cells
    out = []
    for r, row in enumerate(pattern.cells):
        c = 0
        while c < cols:
            if not row[c]:
                c += 1
                continue
            end = c
            while end < cols and row[end]:
                end += 1
            out.append(((x0 + 0.5 * (c + end) * s, y0 - (r + 0.5) * s), (0.5 * (end - c) * s, 0.5 * s)))
            c = end
    return out


def marker_corners_m(side_m: float) -> np.ndarray:
    """The outer corners (4, 3) of a square marker of side `side_m` centred in its frame, in OpenCV's order
    (top-left, top-right, bottom-right, bottom-left), as solvePnP's IPPE_SQUARE wants them."""
    h = 0.5 * side_m
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


#: The faces of a marker cube: (id offset, outward normal, the print's +x axis) in the object's frame. Id offset 0
#: is the top face; a cylinder carries only that one.
CUBE_FACES: tuple[tuple[int, Vec3, Vec3], ...] = (
    (0, (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)),
    (1, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    (2, (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)),
    (3, (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    (4, (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
)


def marker_frames(face_half_m: float, faces: int = len(CUBE_FACES)) -> dict[int, np.ndarray]:
    """Id offset -> the 4x4 pose of each face's marker in the object's frame, for an object whose printed faces lie
    `face_half_m` from its centre (the print PATTERN_LIFT_M proud of the face): what the tracker inverts."""
    out = {}
    for offset, normal, x_axis in CUBE_FACES[:faces]:
        z, x = np.asarray(normal, float), np.asarray(x_axis, float)
        t = np.eye(4)
        t[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
        t[:3, 3] = (face_half_m + PATTERN_LIFT_M) * z
        out[offset] = t
    return out


def object_markers(
    parent: str, face_half_m: float, faces: int, first_id: int = OBJECT_MARKER_ID
) -> tuple[PatternSpec, ...]:
    """ArUco markers first_id, first_id + 1, ... on the object's top face (faces=1) or its top and four sides
    (faces=5, a cube of half side `face_half_m`), laid out as marker_frames says."""
    from sim.transforms import mat_to_quat

    out = []
    for offset, t in marker_frames(face_half_m, faces).items():
        cells = aruco_cells(OBJECT_MARKER_DICTIONARY, first_id + offset)
        out.append(PatternSpec(name=f"{parent}_marker{offset}", parent=parent, cells=cells,
                               cell_m=OBJECT_MARKER_SIZE_M / len(cells), pos_m=tuple(float(v) for v in t[:3, 3]),  # type: ignore[arg-type]
                               quat=tuple(float(v) for v in mat_to_quat(t[:3, :3])),  # type: ignore[arg-type]
                               margin_m=0.004))  # fmt: skip
    return tuple(out)
