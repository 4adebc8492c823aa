"""What the curated notebooks call: every section rendered from a result folder, never recomputed.

A notebook cell is one call, e.g. `nb.headline(result, "dedup")`; `nb.section(result, name)` renders
a whole family (what is missing, headline tables, charts, frames). Everything is driven by the family
registry (`capi_audit.metrics.FAMILIES`) and the result's own content, so a family another branch
adds renders without code here. Each call returns a `Block`: HTML for the page and plain text for
nbval to compare.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from capi_audit import fmt
from capi_audit.result import AuditResult, Section

MAX_FRAME_ROWS = 60
TOP_LEVEL = ("reliable", "reason", "available")


@dataclass
class Block:
    """A piece of a page: `_repr_html_` for Jupyter / the report, `repr` as plain text (nbval)."""

    html: str
    text: str = ""
    images: list[bytes] = field(default_factory=list)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text or "(empty)"

    def __add__(self, other: Block) -> Block:
        return Block(self.html + other.html, "\n\n".join(t for t in (self.text, other.text) if t),
                     self.images + other.images)


def join(blocks: list[Block]) -> Block:
    out = Block("", "")
    for b in blocks:
        out = out + b
    return out


# -- opening a result ------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _read(folder: str, stamp: float) -> AuditResult:
    return AuditResult.read(folder)


@lru_cache(maxsize=2)
def _compute(config: str) -> AuditResult:
    from capi_audit.audit import compute
    from capi_audit.workspace import Workspace

    with Workspace() as ws:
        ws.load(Path(config))
        return compute(ws)


def open_result(result_dir: str | None = None, config: str | None = None) -> AuditResult:
    """The result to show: read from `result_dir` (what `capi-audit report` passes), or — for an
    analyst exploring in JupyterLab without a result folder — computed once from `config`."""
    if result_dir:
        p = Path(result_dir).resolve()
        return _read(str(p), (p / "summary.json").stat().st_mtime if (p / "summary.json").exists() else 0.0)
    if config:
        return _compute(str(Path(config).resolve()))
    raise ValueError("give result_dir (a folder written by `capi-audit run`) or config (an audit.toml)")


# -- small HTML helpers ----------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x))


def md(text: str) -> Block:
    """A paragraph (plain text, escaped)."""
    return Block(f"<p>{_e(text)}</p>", text)


def _table(cells: pd.DataFrame, *, index: str | None = None, caption: str | None = None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in ([index] if index is not None else []) + list(cells.columns))
    rows = []
    for idx, row in cells.iterrows():
        first = f"<th>{_e(idx)}</th>" if index is not None else ""
        rows.append("<tr>" + first + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>")
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f'<table class="ca">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _text_table(cells: pd.DataFrame, *, index: bool) -> str:
    with pd.option_context("display.max_rows", 200, "display.max_columns", 50, "display.width", 200):
        return cells.to_string(index=index)


def _callout(kind: str, text: str) -> str:
    return f'<div class="callout {kind}">{text}</div>'


# -- availability ----------------------------------------------------------------------------------
def availability(result: AuditResult, name: str) -> Block:
    """Whether the section could be computed; if not, what is missing and what would provide it;
    figures marked unreliable, with their reasons."""
    sec = result.section(name)
    parts, text = [], []
    if not sec.available:
        msg = f"Not available: {sec.reason}."
        fix = f"To compute it, provide: {sec.needs}." if sec.needs else ""
        parts.append(_callout("missing", f"<b>{_e(msg)}</b> {_e(fix)}"))
        text.append(f"{msg} {fix}".strip())
    for path, reason in sec.unreliable():
        where = " · ".join(fmt.label(p) for p in path.split(" · ")) if path else fmt.label(name)
        parts.append(_callout("unreliable", f"<b>Not reliable — {_e(where)}:</b> {_e(reason)}"))
        text.append(f"Not reliable — {where}: {reason}")
    return Block("".join(parts), "\n".join(text))


# -- headline tables -------------------------------------------------------------------------------
def _leaves(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every figure; dict leaves are walked, `reliable`/`reason` skipped."""
    out: list[tuple[tuple[str, ...], Any]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in TOP_LEVEL:
                continue
            out += _leaves(v, (*path, str(k)))
    else:
        out.append((path, node))
    return out


def _order_columns(cols: list[str], conv: str) -> list[str]:
    return sorted(cols, key=lambda c: (0 if c.split(" · ")[-1] == conv or c == conv else 1, c))


def _entity_label(path: tuple[str, ...]) -> str:
    return " · ".join(fmt.label(p) if p in fmt.LABELS or p in fmt.PLATFORMS else p for p in path) or "Value"


def _grid(entities: dict[tuple[str, ...], dict[str, Any]], conv: str, *, shares: bool = False) -> pd.DataFrame:
    """Rows: figures (labelled), columns: entities; all-missing figures dropped; formatted. With
    `shares` (a group named like a coverage or share), every figure but `n` is a share."""
    cols = sorted(entities, key=lambda e: (0 if conv in e else 1, e))
    metrics: list[str] = []
    for e in cols:
        metrics += [m for m in entities[e] if m not in metrics]
    metrics = [m for m in metrics if not all(fmt.missing(entities[e].get(m)) for e in cols)]
    order = {k: i for i, k in enumerate(fmt.LABELS)}
    metrics.sort(key=lambda m: order.get(m, len(order)))
    def cell(m: str, v: Any) -> str:
        if shares and m != "n" and isinstance(v, int | float) and not isinstance(v, bool):
            return fmt.pct(v)
        return fmt.value(m, v)

    data = {_entity_label(e): [cell(m, entities[e].get(m)) if m in entities[e] else "–" for m in metrics]
            for e in cols}
    frame = pd.DataFrame(data, index=[fmt.label(m) for m in metrics])
    if frame.shape[1] > 6 and frame.shape[0] < frame.shape[1]:
        frame = frame.T
    return frame


def headline_frames(result: AuditResult, name: str) -> list[tuple[str, pd.DataFrame]]:
    """The section's figures as (title, table of formatted cells): rows are figures, columns the
    entities (platform, destination, event, key) they belong to; entities with different sets of
    figures go to separate tables. Figures missing for every entity are left out; a single
    missing one reads `n/a`, a figure an entity does not have reads `–`."""
    sec = result.section(name)
    if not sec.available:
        return []
    conv = result.config.conversion_event
    values = {k: v for k, v in sec.values.items() if k not in TOP_LEVEL}
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in values.items() if isinstance(v, dict)}
    out: list[tuple[str, pd.DataFrame]] = []
    if scalars:
        out.append(("", _grid({(): scalars}, conv)))
    flat = all(not isinstance(x, dict) for v in nested.values() for x in v.values() if x is not None)
    if flat and nested:
        out.append(("", _grid({(k,): {m: x for m, x in v.items() if m not in TOP_LEVEL} for k, v in nested.items()},
                              conv)))
        return [(t, f) for t, f in out if len(f)]
    for top, node in nested.items():
        entities: dict[tuple[str, ...], dict[str, Any]] = {}
        for path, v in _leaves(node):
            if path:
                entities.setdefault(tuple(path[:-1]), {})[path[-1]] = v
        title = fmt.platform(top)
        # figures directly under the platform that are words, not numbers (e.g. the order key),
        # go into the title rather than a one-cell table
        direct = entities.get((), {})
        words = {k: v for k, v in direct.items() if isinstance(v, str)}
        if words:
            title += " (" + "; ".join(f"{fmt.label(k).lower()}: {v}" for k, v in words.items()) + ")"
            rest = {k: v for k, v in direct.items() if k not in words}
            if rest:
                entities[()] = rest
            else:
                entities.pop((), None)
        # tables: entities with the same structure below their first key (e.g. each event name's
        # figures side by side); entities with disjoint figures (e.g. tiers next to keys) apart
        groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for e in entities:
            groups.setdefault(e[1:], []).append(e)
        for suffix, members in groups.items():
            parts: list[tuple[set[str], dict[tuple[str, ...], dict[str, Any]]]] = []
            for e in members:
                keys = set(entities[e])
                for seen, part in parts:
                    if seen & keys:
                        seen |= keys
                        part[e[:1]] = entities[e]
                        break
                else:
                    parts.append((keys, {e[:1]: entities[e]}))
            for _, part in parts:
                t = title + (" — " + _entity_label(suffix) if suffix else "")
                if len(parts) > 1 and len(part) == 1 and next(iter(part)):
                    t += (" — " if not suffix else " · ") + _entity_label(next(iter(part)))
                    part = {(): next(iter(part.values()))}
                out.append((t, _grid(part, conv, shares=any(fmt.is_share(p) for p in suffix))))
    return [(t, f) for t, f in out if len(f)]


def title(result: AuditResult, name: str) -> Block:
    """The page title and intro of a family (for the generic notebook)."""
    from capi_audit.metrics import family

    fam = family(name)
    return Block(f"<h1>{_e(fam.title)}</h1>" + (f"<p class=\"intro\">{_e(fam.intro)}</p>" if fam.intro else ""),
                 fam.title)


def headline(result: AuditResult, name: str) -> Block:
    """The section's headline figures as human-labelled tables."""
    blocks = [availability(result, name)]
    if headline_frames(result, name):
        blocks.append(Block("<h2>Headline figures</h2>", ""))
    for title, frame in headline_frames(result, name):
        if not len(frame):
            continue
        blocks.append(Block((f"<h3>{_e(title)}</h3>" if title else "") + _table(frame, index=""),
                            (title + "\n" if title else "") + _text_table(frame, index=True)))
    extra = VIEWS.get(name)
    if extra is not None:
        blocks.append(extra(result))
    return join(blocks)


# -- frames ----------------------------------------------------------------------------------------
def frames(result: AuditResult, name: str) -> Block:
    """Every frame the family owns, as a collapsible human-labelled table (first rows)."""
    sec = result.section(name)
    blocks = []
    for fname, frame in sorted(sec.frames.items()):
        if not len(frame) or not len(frame.columns):
            continue
        cells = fmt.frame_cells(frame, max_rows=MAX_FRAME_ROWS)
        more = (f" — first {MAX_FRAME_ROWS:,} of {len(frame):,} rows; all rows in frames/{fname}.parquet"
                if len(frame) > MAX_FRAME_ROWS else f" — {len(frame):,} rows")
        blocks.append(Block(f"<details><summary>{_e(fmt.frame_label(fname))}{_e(more)}</summary>"
                            f"{_table(cells)}</details>",
                            f"{fmt.frame_label(fname)}{more}"))
    if not blocks:
        return Block("", "no frames")
    return join([Block("<h2>Data behind the figures</h2><p>Every frame is also in the result folder as "
                       "Parquet (frames/&lt;name&gt;.parquet).</p>", ""), *blocks])


# -- charts ----------------------------------------------------------------------------------------
def charts(result: AuditResult, name: str, output_dir: str | None = None) -> Block:
    """The family's charts (only those that apply), with captions; saved as PNG and SVG into
    output_dir/charts when an output folder is given (what `capi-audit report` does)."""
    from capi_audit.charts import chart_list, png_bytes, save

    blocks = []
    for fname, caption, draw in chart_list(result, name):
        ax = draw()  # type: ignore[operator]
        if output_dir:  # saved once as PNG and SVG; the page embeds the saved PNG
            png = save(ax, Path(output_dir) / "charts", fname)[0].read_bytes()
        else:
            import matplotlib.pyplot as plt

            png = png_bytes(ax)
            plt.close(ax.figure)
        b64 = base64.b64encode(png).decode("ascii")
        links = (f' (<a href="charts/{_e(fname)}.svg">SVG</a>, <a href="charts/{_e(fname)}.png">PNG</a>)'
                 if output_dir else "")
        blocks.append(Block(f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{b64}">'
                            f"<figcaption>{_e(caption)}{links}</figcaption></figure>",
                            f"[chart] {caption}", [png]))
    if not blocks:
        return Block("", "no charts apply")
    return join([Block("<h2>Charts</h2>", ""), *blocks])


def show(ax: Any) -> Any:
    """Display one chart drawn by the analyst (PNG, whatever the plotting backend)."""
    from IPython.display import Image

    from capi_audit.charts import png_bytes

    return Image(data=png_bytes(ax), format="png")


# -- whole sections --------------------------------------------------------------------------------
def intro(result: AuditResult, name: str) -> Block:
    from capi_audit.metrics import family

    fam = family(name)
    return Block(f"<p class=\"intro\">{_e(fam.intro)}</p>" if fam.intro else "", fam.intro)


def section(result: AuditResult, name: str, output_dir: str | None = None) -> Block:
    """One family, complete: intro, availability, headline tables, charts, frames."""
    return join([intro(result, name), headline(result, name), charts(result, name, output_dir),
                 frames(result, name)])


def notes(result: AuditResult) -> Block:
    items = result.notes
    if not items:
        return Block("", "")
    return Block("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in items) + "</ul>",
                 "Notes:\n" + "\n".join(f"- {n}" for n in items))


# -- richer per-family views (optional; the generic view covers every family) ----------------------
def _recovery_view(result: AuditResult) -> Block:
    from capi_audit.findings import headline_sentences

    lines = headline_sentences(result)
    if not lines:
        return Block("", "")
    return Block("<ul class=\"headline\">" + "".join(f"<li>{_e(s)}</li>" for s in lines) + "</ul>",
                 "\n".join(lines))


VIEWS = {"recovery": _recovery_view}


# -- index page ------------------------------------------------------------------------------------
def executive_summary(result: AuditResult) -> Block:
    """Audit window, headline sentences and ranked findings (capi_audit.findings)."""
    from capi_audit import findings

    return findings.summary_block(result)


def section_list(result: AuditResult, links: bool = False) -> Block:
    """Every section with its status, linked to its report page (`<name>.html`) when links is set."""
    rows, text = [], []
    for sec in result.sections:
        status = "available" if sec.available else f"not available: {sec.reason}"
        if sec.available and sec.unreliable():
            status = f"available; {len(sec.unreliable())} figure(s) not reliable"
        title = _e(sec.title)
        if links:
            title = f'<a href="{_e(sec.name)}.html">{title}</a>'
        rows.append(f"<tr><td>{title}</td><td>{_e(status)}</td></tr>")
        text.append(f"{sec.title}: {status}")
    return Block('<table class="ca"><thead><tr><th>Section</th><th>Status</th></tr></thead><tbody>'
                 + "".join(rows) + "</tbody></table>", "\n".join(text))


__all__ = ["Block", "Section", "availability", "charts", "executive_summary", "frames", "headline", "intro",
           "notes", "open_result", "section", "section_list", "show", "title"]
