"""Smoke run of the calibration script (slow: `pytest -m slow tests/test_calibration.py`)."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.calibration import SCENARIOS, run


@pytest.mark.slow
def test_calibration_smoke():
    res = run([dataclasses.replace(s, weeks=4) for s in SCENARIOS[:2]], reps=60, boot=300)
    for v in res.values():
        for k, c in v["coverage"].items():
            assert c is None or c["rate"] >= 0.8, k
        fp = v["false_positive_rate"]["orders_change_p_value"]
        assert fp is None or fp["rate"] <= 0.2
