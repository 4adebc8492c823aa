"""`capi-audit demo`: generate the demo scenario and write the full report."""

from __future__ import annotations

from pathlib import Path

from capi_audit.synth.fixtures import MAIN
from capi_audit.synth.params import ScenarioParams
from capi_audit.synth.write import write_scenario


def run_demo(out: Path, *, seed: int = 7, notebooks: bool = True) -> Path:
    """Write a synthetic scenario under out/data and the report into out; return index.html."""
    import shutil
    import tempfile

    from capi_audit.report import build_report

    params = ScenarioParams(**{**MAIN.__dict__, "seed": seed})
    with tempfile.TemporaryDirectory(prefix="capi-audit-demo-") as tmp:
        data = Path(tmp) / "data"
        write_scenario(params, data)
        index = build_report(data / "audit.toml", out, notebooks=notebooks)
        shutil.copytree(data, out / "data")  # the scenario next to its report
    return index
