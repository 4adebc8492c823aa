"""Execute the curated notebooks with a config (papermill) and export an HTML report."""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

from capi_audit.audit import run_audit
from capi_audit.errors import ConfigError

NOTEBOOKS = (
    ("01_overview", "Overview: what was loaded and the headline"),
    ("02_dedup", "Deduplication: where pixel and server pair, and where they leak"),
    ("03_recovered_vs_net_new", "Recovered vs net-new: how the rise in conversions splits"),
    ("04_match_keys", "Match keys: coverage, validity, plaintext leaks"),
    ("05_consent", "Consent: what denial removes, and sends that should not happen"),
    ("06_payload_validity", "Payload validity: what the platform would reject"),
)


def notebooks_dir() -> Path:
    """The folder holding the curated notebooks (repository checkout or installed share)."""
    here = Path(__file__).resolve().parents[1] / "notebooks"
    if here.is_dir():
        return here
    raise ConfigError("curated notebooks not found (run from a repository checkout)")


def _kernel_manager_class() -> type:
    """A kernel manager that talks to the local kernel over IPC sockets, not TCP ports."""
    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs: object) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def execute_notebook(name: str, config: Path, out_dir: Path) -> Path:
    """Run one notebook with parameters into out_dir/notebooks/<name>.ipynb."""
    import papermill as pm

    src = notebooks_dir() / f"{name}.ipynb"
    dest = out_dir / "notebooks" / f"{name}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the kernel inherits the environment: figures must render inline even when the caller
    # runs headless with MPLBACKEND=Agg (as `make demo` does)
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        pm.execute_notebook(str(src), str(dest), parameters={"config": str(config.resolve()), "output_dir": str(out_dir.resolve())},
                            cwd=str(notebooks_dir()), progress_bar=False, kernel_name="python3",
                            kernel_manager_class=_kernel_manager_class())
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved
    return dest


def to_html(nb_path: Path, dest: Path, title: str) -> Path:
    """Export an executed notebook to HTML with the code hidden."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    dest.write_text(body, encoding="utf-8")
    return dest


def build_report(config: Path, out: Path, *, notebooks: bool = True) -> Path:
    """Audit (summary.json, charts), execute every notebook, write out/index.html."""
    out.mkdir(parents=True, exist_ok=True)
    result = run_audit(config, out)
    sections = []
    if notebooks:
        for name, title in NOTEBOOKS:
            nb = execute_notebook(name, config, out)
            to_html(nb, out / f"{name}.html", title)
            sections.append((name, title))
        shutil.rmtree(out / "notebooks", ignore_errors=True)
    index = out / "index.html"
    index.write_text(_index_html(result.summary, result.text, sections, sorted((out / "charts").glob("*.png"))),
                     encoding="utf-8")
    return index


def _index_html(summary: dict, text: str, sections: list[tuple[str, str]], charts: list[Path]) -> str:
    links = "\n".join(f'<li><a href="{n}.html">{html.escape(t)}</a></li>' for n, t in sections)
    imgs = "\n".join(f'<figure><img src="charts/{p.name}" alt="{html.escape(p.stem)}"><figcaption>'
                     f'{html.escape(p.stem.replace("_", " "))} (<a href="charts/{p.stem}.svg">SVG</a>)'
                     f'</figcaption></figure>' for p in charts)
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in text.splitlines())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>capi_audit report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.6em; }} li {{ margin: .3em 0; }}
figure {{ display: inline-block; width: 48%; margin: .5%; vertical-align: top; }}
figure img {{ width: 100%; border: 1px solid #eee; }} figcaption {{ font-size: .85em; color: #555; }}
code {{ background: #f4f4f4; padding: 0 .3em; }}
</style></head><body>
<h1>capi_audit report</h1>
<p>Computed from your own logs. Machine-readable figures: <a href="summary.json"><code>summary.json</code></a>.</p>
<h2>Headline</h2><ul>{lines}</ul>
<h2>Sections</h2><ol>{links}</ol>
<h2>Charts</h2>
{imgs}
<p style="font-size:.8em;color:#777">Sections present in summary.json: {html.escape(json.dumps(sorted(summary)))}</p>
</body></html>
"""
