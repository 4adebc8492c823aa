"""Write the curated notebooks (cells only) from the family registry; `make notebooks` executes them.

Choice for "notebooks as notebooks": THIN CELLS. Every code cell is one call into
`capi_audit.notebook` (e.g. `nb.headline(result, "dedup")`), so the logic is linted and tested as
package code, and an analyst can edit or add cells in JupyterLab. The notebooks read a result
folder (`result_dir`, what `capi-audit report` passes); opened by hand without one, they compute
the audit once from `config`. tests/test_notebooks.py checks that the committed notebooks are what
this builder writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))

PARAMS = ('# Parameters: papermill replaces these (capi-audit report passes the result folder).\n'
          'result_dir = None  # a folder written by `capi-audit run --out DIR`\n'
          'config = "../data_fixtures/scenario_main/audit.toml"  # used only when result_dir is None\n'
          'output_dir = None  # the report folder: charts are saved under output_dir/charts')
SETUP = ("from capi_audit import notebook as nb\n"
         "\n"
         "result = nb.open_result(result_dir, config)")


def md(text: str) -> nbf.NotebookNode:
    return nbf.v4.new_markdown_cell(text.strip())


def code(text: str) -> nbf.NotebookNode:
    return nbf.v4.new_code_cell(text.strip())


def notebook(cells: list, params: str = PARAMS) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    p = code(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [cells[0], p, code(SETUP), *cells[1:]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# Richer, hand-written cells for a family's curated notebook (inserted after its headline cell):
# family name -> cells. Keep each code cell one call into capi_audit.notebook / capi_audit.charts.
EXTRA_CELLS: dict[str, list[nbf.NotebookNode]] = {}


def family_notebook(name: str, title: str, intro: str) -> nbf.NotebookNode:
    return notebook([
        md(f"# {title}\n\n{intro}"),
        code(f'nb.headline(result, "{name}")'),
        *EXTRA_CELLS.get(name, []),
        code(f'nb.charts(result, "{name}", output_dir)'),
        code(f'nb.frames(result, "{name}")'),
    ])


def books() -> dict[str, nbf.NotebookNode]:
    """Every notebook the builder writes, by file stem."""
    from capi_audit.metrics import FAMILIES

    out = {"overview": notebook([
        md("# capi_audit report\n\nWhat the server-side Conversions API changed, from your own logs: the audit "
           "window, the headline, and the findings ranked by what they cost, each with what to do."),
        code("nb.executive_summary(result)"),
        md("## Sections\n\nEach section has its own page; a section whose inputs are missing says what would "
           "provide them."),
        code("nb.section_list(result, links=True)"),
        code("nb.notes(result)"),
    ])}
    for fam in FAMILIES:
        out[fam.name] = family_notebook(fam.name, fam.title, fam.intro)
    out["section"] = notebook([
        md("# One section of the audit\n\nThe generic page: any registered family, by name (`section`)."),
        code("nb.title(result, section)"),
        code("nb.headline(result, section)"),
        code("nb.charts(result, section, output_dir)"),
        code("nb.frames(result, section)"),
    ], params=PARAMS + '\nsection = "dedup"  # the family to show')
    return out


def main() -> None:
    """Write every notebook (without outputs)."""
    for name, nb in books().items():
        nbf.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
