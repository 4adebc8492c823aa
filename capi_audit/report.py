"""Render the report from ONE result folder: the curated notebooks, executed with the folder as their
parameter (never recomputing), exported to self-contained HTML pages.

Pages: `index.html` (the overview notebook: executive summary, findings, section list) and one page
per registered family (`<family>.html`): its curated notebook `notebooks/<family>.ipynb` when one
exists, else the generic `notebooks/section.ipynb` with `section = "<family>"` — so a family that
another branch registers renders without code here. All notebooks run in ONE kernel, one after the
other. The report is written into a temporary folder next to the destination and moved into place
only when complete: an error leaves no partial output.
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

from capi_audit.errors import AuditError, ConfigError, stop_requested
from capi_audit.outputs import atomic_folder
from capi_audit.result import AuditResult

OVERVIEW = "overview"
GENERIC = "section"
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1150px; margin: 0 auto;
       padding: 0 1.2em 3em; color: #222; line-height: 1.45; }
nav.top { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ddd; padding: .6em 0;
          font-size: .9em; z-index: 2; }
nav.top a { margin-right: 1em; color: #0072B2; text-decoration: none; }
nav.top a.here { font-weight: bold; color: #222; }
nav.pager { margin-top: 2em; border-top: 1px solid #ddd; padding-top: .6em; display: flex;
            justify-content: space-between; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table.ca { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .88em; }
table.ca th, table.ca td { border-bottom: 1px solid #e4e4e4; padding: .25em .7em; text-align: right;
                           vertical-align: top; }
table.ca th:first-child, table.ca td:first-child { text-align: left; }
table.ca thead th { border-bottom: 2px solid #999; }
table.findings td { text-align: left; }
tr.sev-high td:first-child { color: #D55E00; font-weight: bold; }
tr.sev-medium td:first-child { color: #E69F00; font-weight: bold; }
tr.sev-low td:first-child { color: #0072B2; }
tr.sev-info td:first-child { color: #7F7F7F; }
.callout { padding: .6em .9em; margin: .8em 0; border-left: 4px solid #E69F00; background: #fdf6e7; }
.callout.missing { border-color: #7F7F7F; background: #f3f3f3; }
figure { margin: 1em 0 1.6em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .88em; color: #444; }
details { margin: .4em 0; } summary { cursor: pointer; color: #0072B2; }
.jp-InputPrompt, .jp-OutputPrompt { display: none; }
"""


def notebooks_dir() -> Path:
    """The folder holding the curated notebooks (repository checkout)."""
    here = Path(__file__).resolve().parents[1] / "notebooks"
    if here.is_dir():
        return here
    raise ConfigError("curated notebooks not found (run from a repository checkout)")


def pages() -> list[tuple[str, str, Path, dict]]:
    """(page name, title, notebook, extra parameters) in report order, from the family registry."""
    from capi_audit.metrics import FAMILIES

    nbdir = notebooks_dir()
    out = [("index", "Summary", nbdir / f"{OVERVIEW}.ipynb", {})]
    for fam in FAMILIES:
        curated = nbdir / f"{fam.name}.ipynb"
        if curated.is_file():
            out.append((fam.name, fam.title, curated, {}))
        else:
            out.append((fam.name, fam.title, nbdir / f"{GENERIC}.ipynb", {"section": fam.name}))
    return out


def _kernel_manager_class() -> type:
    """A kernel manager that talks to the local kernel over IPC sockets, not TCP ports."""
    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs: object) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


class Kernel:
    """One local kernel (IPC sockets) for every page. Started before the audit runs, it imports the
    notebook helpers while the audit computes, so its start-up overlaps the computation."""

    def __init__(self) -> None:
        import tempfile

        env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline")
        self.sockets = tempfile.mkdtemp(prefix="capi-audit-kernel-")
        # IPC socket paths are relative to each process's cwd unless absolute: the kernel runs in
        # the notebooks folder, so the path is made absolute
        self.km = _kernel_manager_class()(kernel_name="python3", ip=str(Path(self.sockets) / "kernel"))
        self.km.start_kernel(cwd=str(notebooks_dir()), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.warm = False

    def warm_up(self) -> None:
        """Ask the kernel to import the helpers now (not waited for)."""
        try:
            self.kc.wait_for_ready(timeout=120)
        except RuntimeError as exc:
            raise AuditError(f"the notebook kernel did not start: {exc}") from None
        self.kc.execute("import capi_audit.notebook, capi_audit.charts", silent=True)
        self.warm = True

    def close(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        finally:
            shutil.rmtree(self.sockets, ignore_errors=True)


def execute_all(jobs: list[tuple[str, Path, dict]], kernel: Kernel | None = None) -> dict[str, object]:
    """Execute notebooks one after the other in ONE kernel; return name -> executed notebook."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from papermill.parameterize import parameterize_notebook

    own = kernel is None
    kernel = kernel or Kernel()
    done: dict[str, object] = {}
    try:
        if not kernel.warm:
            kernel.warm_up()
        for name, path, params in jobs:
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                cell.metadata.setdefault("tags", [])
            nb.metadata.setdefault("papermill", {})
            nb = parameterize_notebook(nb, params, kernel_name="python3", language="python")
            for i, cell in enumerate(nb.cells):  # deterministic pages (the injected cell has a random id)
                cell.id = f"{name}-{i}"
            client = NotebookClient(nb, km=kernel.km, timeout=900, kernel_name="python3", allow_errors=False,
                                    resources={"metadata": {"path": str(notebooks_dir())}})
            client.kc = kernel.kc
            try:
                client.execute()
            except CellExecutionError as exc:
                last = [line for line in str(exc).splitlines() if line.strip()]
                raise AuditError(f"report page {name!r} ({path.name}) failed: {last[-1] if last else exc}") from None
            done[name] = nb
    finally:
        if own:
            kernel.close()
    return done


def _body(nb: object) -> str:
    """The executed notebook as HTML: markdown cells rendered (nbconvert's mistune filter), code
    hidden, each code cell's rich output (HTML, else PNG) kept. No template: no page head, no
    require.js or MathJax from a CDN, no stream output (warnings) — the page around it is ours."""
    import base64 as b64
    import re

    from nbconvert.filters.markdown import markdown2html

    parts = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        if cell.cell_type == "markdown":
            text = re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', "", markdown2html(cell.source))
            parts.append(f'<div class="md">{text}</div>')
        elif cell.cell_type == "code":
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "text/html" in data:
                    parts.append(f'<div class="out">{"".join(data["text/html"])}</div>')
                elif "image/png" in data:
                    png = data["image/png"] if isinstance(data["image/png"], str) else b64.b64encode(data["image/png"])
                    parts.append(f'<figure><img alt="chart" src="data:image/png;base64,{png.strip()}"></figure>')
    return "\n".join(parts)


def page(title: str, body: str, current: str, nav: list[tuple[str, str]]) -> str:
    """A complete self-contained HTML page: inline CSS, no scripts, navigation to every page."""
    e = html.escape
    here = ' class="here"'
    links = "".join(f'<a href="{e(n)}.html"{here if n == current else ""}>{e(t.split(":")[0])}</a>'
                    for n, t in nav)
    names = [n for n, _ in nav]
    i = names.index(current) if current in names else 0
    prev = f'<a href="{e(names[i - 1])}.html">← {e(nav[i - 1][1].split(":")[0])}</a>' if i > 0 else "<span></span>"
    nxt = f'<a href="{e(names[i + 1])}.html">{e(nav[i + 1][1].split(":")[0])} →</a>' if i + 1 < len(names) else "<span></span>"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>capi_audit · {e(title)}</title><style>{CSS}</style></head><body>"
            f'<nav class="top">{links} <a href="summary.json">summary.json</a></nav>'
            f"{body}"
            f'<nav class="pager">{prev}{nxt}</nav></body></html>\n')


def _render_inline(result: AuditResult, name: str, out: Path) -> str:
    """A page rendered in this process from the same calls the notebooks make (no kernel)."""
    from capi_audit import notebook as nb

    if name == "index":
        blocks = [nb.Block("<h1>capi_audit report</h1>"), nb.executive_summary(result),
                  nb.Block("<h2>Sections</h2>"), nb.section_list(result, links=True), nb.notes(result)]
    else:
        blocks = [nb.title(result, name), nb.headline(result, name), nb.charts(result, name, str(out)),
                  nb.frames(result, name)]
    return nb.join(blocks).html


def render(result_dir: Path, out: Path, *, notebooks: bool = True, kernel: Kernel | None = None) -> Path:
    """Render every page of the report for the result folder `result_dir` into `out`."""
    result = AuditResult.read(result_dir)
    plan = pages()
    nav = [("index" if n == "index" else n, t) for n, t, _, _ in plan]
    if notebooks:
        jobs = [(n, p, {"result_dir": str(result_dir.resolve()), "output_dir": str(out.resolve()), **extra})
                for n, _, p, extra in plan]
        executed = execute_all(jobs, kernel)
        bodies = {n: _body(executed[n]) for n, _, _, _ in plan}
    else:
        bodies = {n: _render_inline(result, n, out) for n, _, _, _ in plan}
    for n, t, _, _ in plan:
        (out / f"{n}.html").write_text(page(t, bodies[n], n, nav), encoding="utf-8")
    return out / "index.html"


def build_report(config: Path | None, out: Path, *, result_dir: Path | None = None, db: str | None = None,
                 notebooks: bool = True) -> Path:
    """Audit once (or read `result_dir`), write the result into the report folder, render every
    page from it. Written to a temporary folder next to `out`, moved into place when complete."""
    out = Path(out)
    if result_dir is not None and Path(result_dir).resolve() == out.resolve():
        raise ConfigError(f"{out}: --out must differ from --result")
    try:
        with atomic_folder(out, "result.json") as tmp:
            _build_into(tmp, config, result_dir=result_dir, db=db, notebooks=notebooks)
    except AuditError:
        raise
    except Exception as exc:
        if stop_requested():
            raise KeyboardInterrupt from None
        raise AuditError(f"report failed: {type(exc).__name__}: {exc}") from exc
    return out / "index.html"


def _build_into(tmp: Path, config: Path | None, *, result_dir: Path | None, db: str | None,
                notebooks: bool) -> None:
    kernel = None
    try:
        if notebooks:
            kernel = Kernel()  # starts while the audit computes
            kernel.warm_up()
        if result_dir is not None:
            AuditResult.read(result_dir).write(tmp)
        else:
            if config is None:
                raise ConfigError("report needs --config or --result")
            from capi_audit.audit import audit_into

            audit_into(config, tmp, db=db, charts=False)
        render(tmp, tmp, notebooks=notebooks, kernel=kernel)
    finally:
        if kernel is not None:
            kernel.close()
