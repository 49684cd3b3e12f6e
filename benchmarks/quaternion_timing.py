"""Hand-written sim/transforms.py rotations vs numpy-quaternion: single calls (the simulator's per-step path) and
batches of 1000. Run: .venv/bin/python benchmarks/quaternion_timing.py"""

import timeit

import numpy as np
import quaternion

from sim.transforms import mat_to_quat, quat_mul, quat_to_mat

rng = np.random.default_rng(0)
qs = rng.normal(size=(1000, 4))
qs /= np.linalg.norm(qs, axis=1, keepdims=True)
mats = np.stack([quat_to_mat(q) for q in qs])
a, b, m = qs[0].copy(), qs[1].copy(), mats[0].copy()


def nq_mat_to_quat(m):
    q = quaternion.as_float_array(quaternion.from_rotation_matrix(m, nonorthogonal=False)).copy()
    return q if q[0] >= 0 else -q


def nq_mat_to_quat_scipy(m):
    return quaternion.as_float_array(quaternion.from_rotation_matrix(m))


def nq_quat_to_mat(q):
    return quaternion.as_rotation_matrix(quaternion.from_float_array(q))


def nq_quat_mul(a, b):
    return quaternion.as_float_array(quaternion.from_float_array(a) * quaternion.from_float_array(b))


def us(stmt, number):
    return 1e6 * min(timeit.repeat(stmt, number=number, repeat=7)) / number


# the same results first
assert np.allclose(nq_mat_to_quat(m), mat_to_quat(m))
assert np.allclose(nq_quat_to_mat(a), quat_to_mat(a))
assert np.allclose(nq_quat_mul(a, b), quat_mul(a, b))

rows = [
    ("mat_to_quat, 1 call", us(lambda: mat_to_quat(m), 20000), us(lambda: nq_mat_to_quat(m), 20000)),
    ("  (numpy-quaternion default, scipy Bar-Itzhack)", None, us(lambda: nq_mat_to_quat_scipy(m), 2000)),
    ("quat_to_mat, 1 call", us(lambda: quat_to_mat(a), 20000), us(lambda: nq_quat_to_mat(a), 20000)),
    ("quat_mul, 1 call", us(lambda: quat_mul(a, b), 20000), us(lambda: nq_quat_mul(a, b), 20000)),
    (
        "mat_to_quat, 1000 (loop vs array)",
        us(lambda: [mat_to_quat(x) for x in mats], 20),
        us(lambda: quaternion.as_float_array(quaternion.from_rotation_matrix(mats, nonorthogonal=False)), 200),
    ),
    (
        "quat_to_mat, 1000 (loop vs array)",
        us(lambda: [quat_to_mat(x) for x in qs], 20),
        us(lambda: quaternion.as_rotation_matrix(quaternion.from_float_array(qs)), 200),
    ),
    (
        "quat_mul, 1000 (loop vs array)",
        us(lambda: [quat_mul(x, y) for x, y in zip(qs, qs[::-1])], 20),
        us(
            lambda: quaternion.as_float_array(
                quaternion.from_float_array(qs) * quaternion.from_float_array(qs[::-1].copy())
            ),
            200,
        ),
    ),
]
print(f"{'case':52s} {'hand-written us':>16s} {'numpy-quaternion us':>20s} {'ratio nq/hand':>14s}")
for name, hand, nq in rows:
    ratio = f"{nq / hand:.2f}" if hand else "-"
    print(f"{name:52s} {hand if hand else float('nan'):16.2f} {nq:20.2f} {ratio:>14s}")
