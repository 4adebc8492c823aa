"""The committed notebooks are what tools/build_notebooks.py writes, and stay thin."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def test_committed_notebooks_match_the_builder():
    books = _builder().books()
    committed = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert committed, "no notebooks committed"
    for stem in committed:
        assert stem in books, f"{stem}.ipynb is not written by the builder"
        nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
        assert _sources(nb) == _sources(books[stem]), f"{stem}.ipynb differs from the builder: run make notebooks"


def test_every_code_cell_is_valid_python_and_thin():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            tree = ast.parse(cell.source)
            assert len(tree.body) <= 4, (path.name, cell.source)
            assert not any(isinstance(n, ast.FunctionDef | ast.For | ast.ClassDef) for n in ast.walk(tree))


def test_every_family_has_a_page():
    from capi_audit.metrics import FAMILIES
    from capi_audit.report import pages

    names = [p[0] for p in pages()]
    assert names == ["index", *(f.name for f in FAMILIES)]
