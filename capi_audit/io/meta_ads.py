"""`meta_ads_export`: Ads Manager report exports (CSV) -> platform_report (platform meta).

Real header spellings (domain/meta.md §8.1; samples in shared/samples/meta_ads_export): a
`Day` column or `Reporting starts` / `Reporting ends` (rows covering more than one day are
rejected: export with a daily breakdown), a conversions column such as `Website purchases`,
`Purchases` or `Purchases with shared items` (choose one with `options = { conversions = "…" }`),
its conversion value, a few localized header sets, UTF-8 BOM, CRLF, empty cells meaning zero.
Rows with no day at all (an account total line) are skipped and counted. Ads Manager counts are
deduplicated and attributed to ads, not by event date: expect a gap (domain/meta.md §8.3).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import parsing, schema
from capi_audit.errors import InputError
from capi_audit.io.base import Reader, Staged, ensure_file
from capi_audit.io.canonical import stage_csv
from capi_audit.io.csvtools import find_header, number, pick, sniff_text
from capi_audit.io.multi import CsvLayout, LayoutGlob, one_file, reject_rows

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

DAY = ("Day", "Date", "Día", "Jour", "Tag", "Giorno", "Dia")
STARTS = ("Reporting starts", "Inicio del informe", "Début des rapports", "Berichtsstart", "Início dos relatórios")
ENDS = ("Reporting ends", "Fin del informe", "Fin des rapports", "Berichtsende", "Término dos relatórios")
CONVERSIONS = ("Website purchases", "Purchases", "Purchases with shared items", "Meta purchases",
               "Compras en el sitio web", "Compras", "Achats sur le site web", "Achats",
               "Käufe auf der Website", "Käufe", "Compras no site")
VALUES = ("Website purchases conversion value", "Purchases conversion value",
          "Purchases conversion value for shared items only", "Valor de conversión de compras",
          "Valeur de conversion des achats", "Conversionswert der Käufe")


class MetaAdsExportReader(LayoutGlob, Reader):
    """Ads Manager CSV exports into platform_report."""

    name = "meta_ads_export"
    tables = ("platform_report",)
    options = {"conversions": str, "value": str, "event_name": str}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per export line with a single reporting day."""
        ensure_file(file)
        lay, _ = self._layout(ws, spec, file)
        csv_note = stage_csv(ws, file, list(lay.header), lay.wanted, lay.delim, skip=lay.skip, encoding=lay.encoding,
                             file_column=True)
        return one_file(self._transform(ws, spec, [lay]), file, csv_note, first_data_line=lay.skip + 1)

    def _layout(self, ws: Workspace, spec: SourceSpec, file: Path) -> tuple[CsvLayout, tuple]:
        enc, lines = sniff_text(file)
        idx, cols, delim = find_header(file, lines, DAY + STARTS)
        day, starts, ends = pick(cols, DAY), pick(cols, STARTS), pick(cols, ENDS)
        wanted_conv = spec.options.get("conversions") or spec.columns.get("conversions")
        conv = pick(cols, (wanted_conv,) if wanted_conv else CONVERSIONS)
        if conv is None:
            raise InputError(f"{file}: no conversions column (looked for {', '.join(CONVERSIONS[:3])}, …); "
                             'name it with options = { conversions = "…" }')
        value = pick(cols, (spec.options["value"],) if "value" in spec.options else VALUES)
        wanted = {k: v for k, v in (("day", day), ("starts", starts), ("ends", ends), ("conv", conv), ("val", value)) if v}
        lay = CsvLayout(file, tuple(cols), wanted, idx + 1, delim, enc)
        return lay, tuple(sorted(wanted))

    def _transform(self, ws: Workspace, spec: SourceSpec, lays: list[CsvLayout]) -> Staged:
        """`_stage` (raw export lines of one layout, `_file` each) -> platform_report rows."""
        wanted = lays[0].wanted
        day, starts, ends, value = ("day" in wanted), ("starts" in wanted), ("ends" in wanted), ("val" in wanted)
        q = parsing.quote_ident
        first = f"coalesce(NULLIF(trim({q('day')}), ''), NULLIF(trim({q('starts')}), ''))" if day and starts else (
            f"NULLIF(trim({q('day' if day else 'starts')}), '')")
        multi = (f"(NULLIF(trim({q('ends')}), '') IS NOT NULL AND trim({q('ends')}) <> trim({q('starts')}) "
                 f"{'AND NULLIF(trim(' + q('day') + '), ' + chr(39) * 2 + ') IS NULL' if day else ''})") if starts and ends else "FALSE"
        totals = dict(ws.rows(f"SELECT _file, count(*) FROM _stage WHERE {first} IS NULL GROUP BY _file"))
        # a row whose reporting range spans several days cannot be put on one day
        reject_rows(ws, f"SELECT coalesce(_line, _rec + $hdr) AS line, CAST(NULL AS VARCHAR) AS column_name, "
                        f"'reporting range spans several days (export with a breakdown by day)' AS reason, _file "
                        f"FROM _stage WHERE {first} IS NOT NULL AND {multi}", {"hdr": lays[0].skip})
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stage AS
            SELECT _file, _rec, _line, 'meta' AS platform,
                   {first} AS date,
                   $ev AS event_name, {number(q('conv'))} AS conversions,
                   {number(q('val')) if value else 'NULL'} AS value, 'total' AS source
            FROM _stage WHERE {first} IS NOT NULL AND NOT {multi}
        """, {"ev": spec.options.get("event_name", ws.config.conversion_event)})
        notes = {str(lay.file): f"{totals[str(lay.file)]} rows without a day (totals) skipped" if totals.get(str(lay.file)) else ""
                 for lay in lays}
        return Staged(columns=dict.fromkeys(("platform", "date", "event_name", "conversions", "value", "source"), "VARCHAR"),
                      file_notes=notes, file_skipped={str(lay.file): int(totals.get(str(lay.file), 0)) for lay in lays},
                      file_ignored={str(lay.file): tuple(c for c in lay.header if c not in set(lay.wanted.values()))
                                    for lay in lays})
