"""Plain `capi-audit load` names the source columns it did not use and what they could fill."""

from __future__ import annotations

from capi_audit.cli import main
from capi_audit.schema import TABLES, suggest_columns
from tests.conftest import write


def test_plain_load_lists_ignored_columns_with_suggestions(tmp_path, capsys):
    """v1 printed ignored columns only with --json: an unmapped "Sent At" changed double counting
    without a word."""
    write(tmp_path / "server.csv", """
        platform,event_name,event_id,event_time,Sent At,Upload Status,Colour
        meta,Purchase,e1,2026-03-01T10:00:00Z,2026-03-01T10:01:00Z,accepted,blue
    """)
    write(tmp_path / "audit.toml", """
        [[sources]]
        table = "server_events"
        path = "server.csv"
    """)
    assert main(["load", "--config", str(tmp_path / "audit.toml")]) == 0
    out = capsys.readouterr().out
    assert "source columns not used" in out
    assert "'Sent At' -> could be sent_at" in out
    assert "'Upload Status' -> could be status" in out
    assert "'Colour'" in out and "'Colour' -> could be" not in out


def test_suggestions_only_name_canonical_columns():
    assert suggest_columns("orders", "Created at") == ["created_at"]
    assert suggest_columns("orders", "Shop Order ID")[0] == "order_id"
    assert suggest_columns("nope", "x") == []
    for table in TABLES:
        names = {c.name for c in TABLES[table].columns}
        assert set(suggest_columns(table, "event_time")) <= names


def test_docs_list_every_canonical_column():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "loading.md").read_text()
    for table in TABLES.values():
        assert f"### {table.name}" in text
        for col in table.columns:
            assert f"| `{col.name}` |" in text, (table.name, col.name)


def test_docs_cite_only_files_in_the_repository():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", root / "BENCHMARKS.md", *(root / "docs").glob("*.md")]:
        text = doc.read_text()
        assert not re.search(r"(?<![\w/])(domain|shared|reviews)/[\w.-]+\.md", text), doc.name
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith(("http://", "https://", "mailto:")):
                assert (doc.parent / target).exists(), (doc.name, target)
