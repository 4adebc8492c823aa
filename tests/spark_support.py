"""Spark local for the tests: one session per test run, skipped cleanly without pyspark or Java."""

from __future__ import annotations

import os
import shutil
import warnings

import pytest


def spark_available() -> str | None:
    """None when Spark local can start here, else the reason it cannot."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark not installed (pip install '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java not on PATH, JAVA_HOME unset)"
    return None


# Fixture-sized data (thousands of rows): Spark's time is its fixed cost per statement, not data.
# One shuffle partition (one task per stage), no whole-stage code generation (compiling a Java
# class per stage costs more than it saves on a few thousand rows), and the JVM's quick C1 JIT
# only (C2 spends the two cores optimizing code that runs for a second). Semantics are unchanged.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -Xss16m -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m",
}


@pytest.fixture(scope="session")
def spark():
    """A SparkSession on local[2], sized for a 2-core machine (see capi_audit.engine.spark_session)."""
    reason = spark_available()
    if reason:
        pytest.skip(reason)
    warnings.filterwarnings("ignore", message=".*does not yet fully support pandas.*")
    from capi_audit.engine import spark_session

    session = spark_session(conf=TEST_CONF)
    yield session
    session.stop()
