"""The `capi-audit` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capi_audit.errors import STOP_REQUESTED, AuditError, ConfigError, stop_requested


def _print_load_table(reports: list, sources: dict[tuple[str, str], str] | None = None) -> None:
    header = ("table", "file", "read", "loaded", "rejected", "coerced")
    rows = [
        (r.table, Path(r.file).name, str(r.rows_read), str(r.rows_loaded), str(r.rows_rejected),
         ", ".join(f"{k}={v}" for k, v in sorted(r.coerced.items())) or "-")
        for r in reports
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    # a note repeated by many files of one glob is printed once, with the number of files
    from capi_audit.io.base import join_notes

    notes: dict[tuple[str, str], list[str]] = {}
    for r in reports:
        # the note as load_report stores it: with the values replaced by markers and exact duplicates
        note = join_notes(r)
        if note:
            notes.setdefault((_source_label(r, sources), note), []).append(Path(r.file).name)
    for (label, note), names in notes.items():
        where = names[0] if len(names) == 1 else f"{label} ({len(names)} files)"
        print(f"note: {where}: {note}")
    _print_ignored(reports, sources)


IGNORED_LISTED = 20  # ignored source columns named per source in plain `load` output


def _source_label(report: Any, sources: dict[tuple[str, str], str] | None) -> str:
    """The source a file was loaded by (its `path` as configured), else the file's name."""
    return (sources or {}).get((report.table, report.file)) or Path(report.file).name


def _print_ignored(reports: list, sources: dict[tuple[str, str], str] | None = None) -> None:
    """Source columns the loader did not use, with the canonical columns they could fill: at most
    IGNORED_LISTED per source (a JSON file with 50,000 keys printed 50,000 lines), then how many
    more. Names were passed through the personal-data detector at load."""
    from capi_audit.schema import suggest_columns

    by_source: dict[str, tuple[str, dict[str, None], set[str]]] = {}
    for r in reports:
        label = _source_label(r, sources)
        table, names, files = by_source.setdefault(label, (r.table, {}, set()))
        files.add(r.file)
        names.update(dict.fromkeys(r.ignored_columns or []))
    if not any(names for _, names, _ in by_source.values()):
        return
    print("\nsource columns not used (map one with `columns = { <canonical> = \"<source column>\" }` "
          "in its [[sources]] entry; docs/loading.md lists every canonical column):")
    for label, (table, names, files) in by_source.items():
        where = label if len(files) == 1 else f"{label} ({len(files)} files)"
        for col in list(names)[:IGNORED_LISTED]:
            hint = suggest_columns(table, col)
            could = f" -> could be {' or '.join(hint)}" if hint else ""
            print(f"  {where}: {col!r}{could}")
        if len(names) > IGNORED_LISTED:
            print(f"  {where}: … and {len(names) - IGNORED_LISTED:,} more (`capi-audit load --json` lists each "
                  "file's ignored_columns)")


def _sources_of(config: Any, reports: list) -> dict[tuple[str, str], str]:
    """(table, file as shown) -> the `path` of the source that loaded it, for grouping the output."""
    from capi_audit.parsing import redact_path

    wanted = {(r.table, r.file) for r in reports}
    out: dict[tuple[str, str], str] = {}
    for spec in getattr(config, "sources", ()):
        if any(ch in spec.path for ch in "*?[") and not Path(spec.path).exists():
            for f in spec.files():
                if (spec.table, redact_path(str(f))) in wanted:
                    out[(spec.table, redact_path(str(f)))] = redact_path(Path(spec.path).name)
    return out


def cmd_load(args: argparse.Namespace) -> int:
    """Load the sources of a config and print the load report."""
    from capi_audit.audit import refuse_loaded
    from capi_audit.config import load_config
    from capi_audit.workspace import Workspace

    check_db(args.db)
    config = load_config(args.config)
    with Workspace(args.db) as ws:
        refuse_loaded(ws, args.db)
        reports = ws.load(config)
        if args.json:
            out = {"files": [r.as_dict() for r in reports],
                   "rejects": ws.rejects().astype(object).where(ws.rejects().notna(), None).to_dict("records")}
            print(json.dumps(out, indent=2, sort_keys=True, default=str))
        else:
            _print_load_table(reports, _sources_of(ws.config, reports))
            rej = ws.rejects()
            if len(rej):
                print(f"\n{len(rej)} rejected rows (first 20):")
                for r in rej.head(20).itertuples():
                    col = f" column {r.column_name}" if isinstance(r.column_name, str) else ""
                    print(f"  {Path(r.file).name} line {r.line}{col}: {r.reason}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic scenario with its truth.json."""
    from capi_audit.synth import ScenarioParams, write_scenario

    if args.days < 4:
        raise ConfigError("--days must be at least 4 (days before and after enablement)")
    half = args.days // 2
    params = ScenarioParams(days=args.days, orders_per_day=args.orders_per_day, seed=args.seed,
                            timezone=args.timezone, start=args.start,
                            enable_day={"meta": half, "google": min(args.days - 1, half + max(1, args.days // 12))})
    paths = write_scenario(params, args.out, fmt=args.format, real=args.formats == "real")
    print(f"wrote scenario to {args.out} ({paths['events']} events, {paths['orders']} orders)")
    return 0


def check_out_dir(out: str | Path, option: str = "--out", marker: str = "result.json") -> None:
    """`--out` must be a folder (existing or creatable), not a file. The finished output replaces
    the folder whole (outputs.atomic_folder), so an existing one must be empty or a previous
    output (holding `marker`), never a folder with something else in it."""
    from capi_audit.outputs import check_replaceable

    p = Path(out)
    check_replaceable(p, marker, option)
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{p}: {option} lies under {parent}, which is a file")
            break


def check_db(db: str | None) -> None:
    """`--db` must be a DuckDB file or a new file in an existing folder."""
    if db:
        from capi_audit.workspace import check_db_path

        check_db_path(Path(db))


def cmd_run(args: argparse.Namespace) -> int:
    """Load, compute every metric and write summary.json."""
    from capi_audit.audit import run_audit

    check_out_dir(args.out)
    check_db(args.db)

    result = run_audit(args.config, args.out, db=args.db, charts=not args.no_charts, engine=args.engine)
    print(result.text)
    print(f"\nwrote the result to {args.out} (summary.json, result.json, frames/"
          f"{', charts/' if not args.no_charts else ''})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Load the sources in DuckDB and write the canonical tables as Parquet (for another engine)."""
    from capi_audit.audit import open_workspace
    from capi_audit.config import load_config

    check_out_dir(args.to, "--to", marker="load_report.parquet")  # an existing file named by --to ended in "FileExistsError: [Errno 17]"
    check_db(args.db)
    from capi_audit.outputs import atomic_folder

    to = Path(args.to)
    with open_workspace(load_config(args.config), db=args.db, engine="duckdb") as ws, atomic_folder(to, "load_report.parquet") as tmp:
        paths = ws.export_parquet(tmp)
    for table, path in paths.items():
        print(f"{table}: {to / path.relative_to(tmp)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the demo scenario and write the full report."""
    from capi_audit.demo import run_demo
    from capi_audit.gates import check, print_table

    path = run_demo(Path(args.out), seed=args.seed, notebooks=not args.no_notebooks)
    print(f"report: {path}")
    print(f"\nCI gates (capi-audit check --result {args.out}):")
    print_table(check(Path(args.out)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Execute the curated notebooks with a config and export HTML plus charts."""
    from capi_audit.report import build_report

    if bool(args.config) == bool(args.result):
        raise ConfigError("report needs exactly one of --config (audit, then render) or --result (render a result folder)")
    check_out_dir(args.out)
    check_db(args.db)
    path = build_report(Path(args.config) if args.config else None, Path(args.out),
                        result_dir=Path(args.result) if args.result else None, db=args.db,
                        notebooks=not args.no_notebooks)
    print(f"report: {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Evaluate CI gates on a result folder; exit 0 pass, 1 a gate failed, 2 an error."""
    from capi_audit.gates import check, load_gates, print_table

    verdict = check(Path(args.result), load_gates(Path(args.gates)) if args.gates else None)
    if args.json:
        print(json.dumps(verdict, indent=2, sort_keys=True))
    else:
        print_table(verdict)
    if args.write:
        from capi_audit.gates import write_verdict

        write_verdict(Path(args.result), verdict)
    return 0 if verdict["verdict"] == "pass" else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(
        prog="capi-audit",
        description="Audit a browser pixel against a server-side Conversions API from your own logs.",
        epilog="User errors (config, missing files or columns) print one line and exit with status 2.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("load", help="load the sources of audit.toml and print the load report")
    s.add_argument("--config", required=True, help="path to audit.toml")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--db", default=None, help="DuckDB file for a file-backed workspace (default: in memory)")
    s.set_defaults(func=cmd_load)

    s = sub.add_parser("synth", help="write a synthetic scenario with planted ground truth")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--days", type=int, default=60, help="days in the scenario (CAPI enabled half-way)")
    s.add_argument("--orders-per-day", type=float, default=60.0, help="mean real orders per day before growth")
    s.add_argument("--seed", type=int, default=7, help="same seed, same bytes")
    s.add_argument("--timezone", default="Europe/Berlin", help="the shop's and ad account's time zone")
    s.add_argument("--start", default="2026-02-01", help="first day (local date)")
    s.add_argument("--format", choices=("csv", "parquet"), default="csv", help="canonical file format")
    s.add_argument("--formats", choices=("canonical", "real"), default="canonical",
                   help="real: also write the scenario in real-world formats under OUT/real/")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("run", help="audit real inputs: writes summary.json (and charts)")
    s.add_argument("--config", required=True, help="path to audit.toml")
    s.add_argument("--out", required=True, help="output folder for summary.json and charts/ (new, empty or a "
                   "previous result: written whole, then moved into place)")
    s.add_argument("--db", default=None, help="DuckDB file for a file-backed workspace")
    s.add_argument("--no-charts", action="store_true", help="write summary.json only")
    s.add_argument("--engine", choices=("duckdb", "spark"), default=None,
                   help="where the metrics run (default: [engine] kind of audit.toml, else duckdb)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("export", help="load the sources and write the canonical tables as Parquet")
    s.add_argument("--config", required=True, help="path to audit.toml")
    s.add_argument("--to", required=True, help="output folder: one <table>.parquet per canonical table (new, "
                   "empty or a previous export)")
    s.add_argument("--db", default=None, help="DuckDB file for a file-backed workspace")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("report", help="audit once (or read a result) and render the notebooks to an HTML report")
    s.add_argument("--config", default=None, help="path to audit.toml (audit, then render)")
    s.add_argument("--result", default=None, help="a result folder written by `run` (render only)")
    s.add_argument("--out", required=True, help="output folder: index.html, section pages, charts/, the result "
                   "(new, empty or a previous report)")
    s.add_argument("--db", default=None, help="DuckDB file for a file-backed workspace (with --config)")
    s.add_argument("--no-notebooks", action="store_true",
                   help="render the pages in this process from the same calls (no Jupyter kernel)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("check", help="evaluate CI gates on a result folder (exit 0 pass, 1 fail, 2 error)")
    s.add_argument("--result", required=True, help="a result folder written by `run` or `report`")
    s.add_argument("--gates", default=None, help="gates.toml (default: the built-in gates of design §5)")
    s.add_argument("--json", action="store_true", help="print the verdict as JSON only")
    s.add_argument("--write", action="store_true", help="also store the verdict in summary.json (section gates)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("demo", help="generate a synthetic scenario and write the full report")
    s.add_argument("--out", default="reports/demo", help="output folder (default reports/demo)")
    s.add_argument("--seed", type=int, default=7, help="scenario seed")
    s.add_argument("--no-notebooks", action="store_true", help="skip notebook execution")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one clear line and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    STOP_REQUESTED.clear()
    previous = _stop_on_signals()
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return _stopped()
    except AuditError as exc:
        return _error(str(exc), exc.exit_code)
    except BrokenPipeError:
        # the reader of our output went away (`load --json | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # never a traceback: one line, exit 2 (CAPI_AUDIT_DEBUG=1 re-raises)
        if os.environ.get("CAPI_AUDIT_DEBUG"):
            raise
        if stop_requested():
            return _stopped()  # an interrupt that surfaced as another exception type
        text = str(exc).strip().splitlines()
        return _error(f"{type(exc).__name__}: {text[0] if text else 'unexpected failure'}", 2)
    finally:
        for sig, handler in previous or []:
            signal.signal(sig, handler)


def _stopped() -> int:
    # Ctrl-C, or SIGTERM (a CI job's timeout): the load's transaction was rolled back, a partial
    # output folder removed (outputs.atomic_folder) and the spill folder is removed at exit
    return _error("stopped before the end; nothing was written (a --db file keeps what an earlier "
                  "command committed)", 130)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    STOP_REQUESTED.append(True)
    raise KeyboardInterrupt


def _stop_on_signals() -> list[tuple[int, Any]] | None:
    """Ctrl-C and SIGTERM end the command the same way (clean-up runs, one line); returns the
    handlers to restore, None when not on the main thread (handlers can only be set there)."""
    try:
        return [(s, signal.signal(s, _raise_interrupt)) for s in (signal.SIGINT, signal.SIGTERM)]
    except ValueError:
        return None


def _error(message: str, code: int) -> int:
    from capi_audit.parsing import redact_path

    try:
        # an error names input files: their personal parts are redacted like everywhere else
        print(f"capi-audit: error: {redact_path(' '.join(message.split(chr(10))))}", file=sys.stderr)
    except BrokenPipeError:
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
