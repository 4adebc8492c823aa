"""Realism hooks for orders and the pixel (issue 12): overdispersed daily orders, slow drift in
pixel capture, QA test orders around go-live. Each is a small pure function of the scenario
parameters and the day, with its own random stream, so the other draws do not move."""

from __future__ import annotations

import numpy as np

from capi_audit.synth.params import ScenarioParams


def order_rate_noise(params: ScenarioParams, day: int) -> float:
    """Multiplier on one day's order rate: gamma with mean 1 and coefficient of variation
    `orders_day_cv` (1.0 when none), so daily orders vary more than Poisson."""
    cv = params.orders_day_cv
    if cv <= 0:
        return 1.0
    rng = np.random.default_rng([params.seed, day, 91])
    return float(rng.gamma(1 / cv**2, cv**2))


def capture_drift(params: ScenarioParams, day: int) -> float:
    """Extra browser-loss probability on a day: rises linearly from 0 to `capture_drift`."""
    if params.capture_drift == 0 or params.days <= 1:
        return 0.0
    return params.capture_drift * day / (params.days - 1)


def qa_test_share(params: ScenarioParams, day: int) -> float:
    """Extra probability that an order is a QA test: from 2 days before to 2 days after the first
    CAPI go-live (testers buy through the new setup)."""
    if params.qa_test_share <= 0 or not params.enable_day:
        return 0.0
    first = min(params.enable_day.values())
    return params.qa_test_share if first - 2 <= day <= first + 2 else 0.0
