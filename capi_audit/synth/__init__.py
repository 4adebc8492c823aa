"""Synthetic shop scenarios with planted ground truth."""

from capi_audit.synth.params import DEFECTS, ScenarioParams
from capi_audit.synth.write import write_scenario

__all__ = ["DEFECTS", "ScenarioParams", "write_scenario"]
