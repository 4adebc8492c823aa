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


@pytest.fixture(scope="session")
def spark():
    """A SparkSession on local[2], sized for a 2-core machine (see capi_audit.engine.spark_session)."""
    reason = spark_available()
    if reason:
        pytest.skip(reason)
    warnings.filterwarnings("ignore", message=".*does not yet fully support pandas.*")
    from capi_audit.engine import spark_session

    session = spark_session()
    yield session
    session.stop()
