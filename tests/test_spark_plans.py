"""Spark plans of the counted units and the unit causes: the shapes that made them slow at scale.

At 1M events the Method B pairing took 230-304 s on Spark local: its join matched server and pixel
units on the dataset and event name alone and tested `fbp = fbp OR external_id = external_id`
afterwards (every server unit against every pixel unit of the name). The unit causes were six
correlated EXISTS (six existence joins, each reshuffling the units), computed again in every
platform's CAPI-effect classification. And the small relations held in Python (`u_params`, ...)
were RDDs of unknown size, so each join on them was a sort-merge join that shuffled the large side
by a key of a handful of values. These tests read the optimized plans on the fixture.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spark_units(spark_main_audit):
    """The plans of every statement of scenario_main's audit on Spark (conftest: run once, shared
    with the equality test), and the estimated sizes of the small relations. The audit builds the
    counted units with and without the server logs, and the unit causes of each, once."""
    return spark_main_audit["plans"], spark_main_audit["sizes"]


@pytest.mark.spark
def test_method_b_pairing_is_not_an_or_join_on_spark(spark_units):
    plans, _ = spark_units
    mb = [phys for head, _, phys in plans if "unit_a, max(CASE WHEN channel = 'pixel'" in head]
    assert len(mb) == 2, "the Method B statement (all logs, pixel alone) was not seen"
    for plan in mb:
        joins = [ln for ln in plan.splitlines() if re.search(r"(HashJoin|SortMergeJoin) \[", ln)]
        assert joins
        for ln in joins:
            keys = ln.split("[", 1)[1].split("]", 1)[0]
            # a join that tests fbp or external_id has it among its keys (not in an OR afterwards)
            for col in ("fbp", "external_id"):
                if f"({col}#" in ln or f" {col}#" in ln:
                    assert "fbp#" in keys or "external_id#" in keys, f"{col} tested after a join on {keys}: {ln}"


@pytest.mark.spark
def test_unit_causes_are_not_existence_joins_on_spark(spark_units):
    plans, _ = spark_units
    causes = [opt for head, opt, _ in plans if head.startswith("WITH x_units_")]
    assert len(causes) == 2, "unit causes were not materialized once per units relation"
    for plan in causes:
        assert "ExistenceJoin" not in plan and "LeftSemi" not in plan


@pytest.mark.spark
def test_small_python_relations_have_known_sizes_on_spark(spark_units):
    # a size Spark knows lets it broadcast them (an RDD of Python rows counts as unknown: huge)
    _, sizes = spark_units
    assert all(s < 1 << 20 for s in sizes.values()), sizes
