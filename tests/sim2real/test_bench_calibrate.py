"""`sim2real bench calibrate` measures what it says: positive times per replay, ratios against the bare loop."""

from __future__ import annotations

from sim2real.bench_calibrate import CASES, bench_calibrate


def test_the_bench_runs_its_cases_and_reports_ratios() -> None:
    result = bench_calibrate(repeats=1, cases=["mj_step_bare", "replay_mujoco", "rollout_1_thread"])
    assert set(result["cases"]) == {"mj_step_bare", "replay_mujoco", "rollout_1_thread"} <= set(CASES)
    assert all(c["median_ms"] > 1.0 for c in result["cases"].values())  # 5000 physics steps take milliseconds
    assert set(result["ratios"]) == {"replay_mujoco / mj_step_bare", "rollout_1_thread / mj_step_bare"}
    assert result["bench"] == "calibrate" and result["settings"]["batch"] == 16


def test_the_scale_case_measures_the_fit_evaluator() -> None:
    result = bench_calibrate(repeats=1, cases=["scale_1_worker", "scale_2_workers"])
    assert set(result["scale"]) == {"scale_1_worker", "scale_2_workers"} and not result["cases"]
    rates = [result["scale"][c]["evals_per_s"] for c in ("scale_1_worker", "scale_2_workers")]
    assert all(1.0 < r < 1000.0 for r in rates)  # 10 s replays: a few per second per core
