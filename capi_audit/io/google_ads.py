"""Google Ads files.

`google_ads_click_conversions` -> server_events: the offline click-conversion upload CSV
(`Google Click ID, Conversion Name, Conversion Time, Conversion Value, Conversion Currency`,
optional `Order ID`, enhanced-conversion `Email` / `Phone Number`, consent `Ad User Data`), with
an optional first row `Parameters:TimeZone=…` that applies to times without their own zone
(https://support.google.com/google-ads/answer/7014069, domain/google.md §2.2-2.3). Any other
canonical column (e.g. `sent_at`) can be mapped with `columns`.

`google_ads_report` -> platform_report: a report downloaded from the Google Ads UI (UTF-8 or
UTF-16 with tabs, title and date-range lines, `Total:` rows, ` --` for none, thousands
separators), segmented by `Day`, with `Conversions` (and `Conv. value`, `Conversion action`) or
Report Editor pivot columns `<action>_Conversions` (domain/google.md §6).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from capi_audit import parsing, schema
from capi_audit.errors import InputError
from capi_audit.io.base import Reader, Staged, ensure_file
from capi_audit.io.canonical import stage_csv
from capi_audit.io.csvtools import find_header, number, pick, sniff_text
from capi_audit.io.multi import CsvLayout, LayoutGlob, one_file

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

CLICK_COLUMNS = {
    "gclid": ("Google Click ID", "GCLID"),
    "gbraid": ("GBRAID",),
    "wbraid": ("WBRAID",),
    "event_name": ("Conversion Name",),
    "event_time": ("Conversion Time",),
    "value": ("Conversion Value",),
    "currency": ("Conversion Currency",),
    "event_id": ("Order ID", "Transaction ID"),
    "em": ("Email", "Hashed Email"),
    "ph": ("Phone Number", "Hashed Phone Number"),
    # ad_user_data governs uploads (domain: https://support.google.com/google-ads/answer/14310715);
    # it is not ad_storage, so it never lands in consent_ads
    "consent_ad_user_data": ("Ad User Data",),
}
DATE_COLUMNS = ("Day", "Date", "Tag", "Día", "Jour", "Giorno", "Ngày")
# Conversion-dated columns first: the standard `Conversions` column dates a conversion on the day
# of the ad interaction, so recent days keep growing and a log-vs-report comparison shifts
# (metrics.conversions_by_conversion_date; https://developers.google.com/google-ads/api/docs/conversions/reporting).
CONV_BY_CONV_TIME = ("Conversions (by conv. time)", "Conv. (by conv. time)", "conversions_by_conversion_date",
                     "metrics.conversions_by_conversion_date")
CONV_COLUMNS = ("Conversions", "Conv.", "Konversionen", "Conversiones", "metrics.conversions")
VALUE_BY_CONV_TIME = ("Conv. value (by conv. time)", "Conversion value (by conv. time)",
                      "conversions_value_by_conversion_date", "metrics.conversions_value_by_conversion_date")
VALUE_COLUMNS = ("Conv. value", "Conversion value", "Konv.-Wert", "Valor de conv.", "metrics.conversions_value")
ACTION_COLUMNS = ("Conversion action", "Conversion name", "Conversion action name")
PIVOT_SUFFIX = "_Conversions"


class GoogleClickConversionsReader(LayoutGlob, Reader):
    """Offline click-conversion upload files into server_events (platform google)."""

    name = "google_ads_click_conversions"
    tables = ("server_events",)

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per uploaded conversion."""
        ensure_file(file)
        lay, _ = self._layout(ws, spec, file)
        csv_note = stage_csv(ws, file, list(lay.header), lay.wanted, lay.delim, skip=lay.skip, encoding=lay.encoding,
                             file_column=True)
        return one_file(self._transform(ws, spec, [lay]), file, csv_note, first_data_line=lay.skip + 1)

    def _layout(self, ws: Workspace, spec: SourceSpec, file: Path) -> tuple[CsvLayout, tuple]:
        enc, lines = sniff_text(file)
        file_tz = None
        if lines and lines[0].lower().startswith("parameters:"):
            m = re.search(r"timezone=([^,;\s]+)", lines[0], re.I)
            file_tz = m.group(1) if m else None
        idx, cols, delim = find_header(file, lines, ("Google Click ID", "Conversion Name", "GCLID"))
        mapping = {}
        for canon, names in CLICK_COLUMNS.items():
            src = pick(cols, (spec.columns[canon],) if canon in spec.columns else names)
            if src:
                mapping[canon] = src
        for canon, src in spec.columns.items():
            if canon not in mapping and src in cols:
                mapping[canon] = src
        for req in ("event_name", "event_time"):
            if req not in mapping:
                raise InputError(f"{file}: required column {CLICK_COLUMNS[req][0]!r} is missing")
        if "order_id" not in mapping and "event_id" in mapping:
            mapping["order_id"] = mapping["event_id"]
        # the conversion action is the Google dedup scope (design v2 §3.0)
        if "destination" not in mapping:
            mapping["destination"] = mapping["event_name"]
        zone, suffix = _file_zone(file, file_tz)
        lay = CsvLayout(file, tuple(cols), mapping, idx + 1, delim, enc,
                        extra={"zone": zone, "suffix": suffix, "file_tz": file_tz})
        return lay, (tuple(sorted(mapping)), zone, suffix, file_tz)

    def _transform(self, ws: Workspace, spec: SourceSpec, lays: list[CsvLayout]) -> Staged:
        """`_stage` (raw upload rows of one layout and time zone) -> server_events rows."""
        mapping, x = lays[0].wanted, lays[0].extra
        t = parsing.quote_ident("event_time")
        zoned = r"' ([A-Za-z]+/[A-Za-z_/+-]+)$'"
        # one rebuild of the staged rows, not an UPDATE and two ALTERs: an UPDATE of every row of a
        # 537 MB upload file (5.3M conversions) ran out of the load's 400 MB (DuckDB keeps updated
        # values in memory until they commit; a new table spills)
        extra = {"platform": "VARCHAR"} | ({} if "source_api" in mapping else {"source_api": "VARCHAR"})
        added = "'google' AS platform" + ("" if "source_api" in mapping else ", 'file_upload' AS source_api")
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stage AS SELECT * REPLACE (CASE
                WHEN regexp_matches({t}, {zoned}) AND regexp_extract({t}, {zoned}, 1) NOT IN (SELECT name FROM pg_timezone_names())
                     THEN 'unknown time zone'  -- the row is rejected (event_time not a time)
                WHEN regexp_matches({t}, {zoned}) THEN coalesce(strftime(timezone(regexp_extract({t}, {zoned}, 1),
                     try_cast(regexp_replace({t}, {zoned}, '') AS TIMESTAMP)), '%Y-%m-%dT%H:%M:%S%z'), {t})
                WHEN regexp_matches({t}, '([+-][0-9]{{2}}:?[0-9]{{2}}|Z)$') THEN {t}
                WHEN $zone IS NOT NULL THEN coalesce(strftime(timezone($zone, try_cast({t} AS TIMESTAMP)), '%Y-%m-%dT%H:%M:%S%z'), {t})
                WHEN $suffix IS NOT NULL THEN {t} || $suffix
                ELSE {t} END AS {t}), {added}
            FROM _stage
        """, {"zone": x["zone"], "suffix": x["suffix"]})
        note = f"file time zone {x['file_tz']}" if x["file_tz"] else ""
        return Staged(columns={**dict.fromkeys(mapping, "VARCHAR"), **extra},
                      file_notes={str(lay.file): note for lay in lays},
                      file_ignored={str(lay.file): tuple(c for c in lay.header if c not in set(lay.wanted.values()))
                                    for lay in lays})


def _file_zone(file: Path, tz: str | None) -> tuple[str | None, str | None]:
    """(IANA zone, offset suffix) from a Parameters:TimeZone value."""
    if not tz:
        return None, None
    if re.fullmatch(r"[+-]\d{4}", tz):
        return None, tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"{file}: unknown Parameters:TimeZone {tz!r}") from exc
    return tz, None


class GoogleAdsReportReader(LayoutGlob, Reader):
    """Google Ads UI report downloads (segmented by day) into platform_report."""

    name = "google_ads_report"
    tables = ("platform_report",)
    options = {"event_name": str, "date_basis": str}  # noqa: RUF012  (hostile's per-format option check)

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per day (and conversion action), skipping Total rows."""
        ensure_file(file)
        lay, _ = self._layout(ws, spec, file)
        csv_note = stage_csv(ws, file, list(lay.header), lay.wanted, lay.delim, skip=lay.skip, encoding=lay.encoding,
                             file_column=True)
        return one_file(self._transform(ws, spec, [lay]), file, csv_note)

    def _layout(self, ws: Workspace, spec: SourceSpec, file: Path) -> tuple[CsvLayout, tuple]:
        enc, lines = sniff_text(file)
        idx, cols, delim = find_header(file, lines, DATE_COLUMNS + ("Campaign", "Conversions"))
        day = pick(cols, (spec.columns["date"],) if "date" in spec.columns else DATE_COLUMNS)
        if day is None:
            raise InputError(f"{file}: the report has no Day column: download it segmented by day")
        if "conversions" in spec.columns:
            conv = pick(cols, (spec.columns["conversions"],))
            basis = spec.options.get("date_basis", "conversion" if pick([conv or ""], CONV_BY_CONV_TIME) else "interaction")
        else:
            conv = pick(cols, CONV_BY_CONV_TIME)
            basis = "conversion"
            if conv is None:
                conv = pick(cols, CONV_COLUMNS)
                basis = "interaction"
        pivots = [c for c in cols if c.endswith(PIVOT_SUFFIX)]
        if conv is None and not pivots:
            raise InputError(f"{file}: no Conversions column (or <action>{PIVOT_SUFFIX} columns)")
        if conv is None:
            basis = spec.options.get("date_basis", "interaction")
        value = pick(cols, VALUE_BY_CONV_TIME if basis == "conversion" else ()) or pick(cols, VALUE_COLUMNS)
        action = pick(cols, ACTION_COLUMNS)
        wanted = {"day": day, **({"conv": conv} if conv else {}), **({"val": value} if value else {}),
                  **({"action": action} if action else {})}
        wanted.update({f"p{i}": c for i, c in enumerate(pivots)})
        actions = tuple(c[: -len(PIVOT_SUFFIX)] for c in pivots)
        lay = CsvLayout(file, tuple(cols), wanted, idx + 1, delim, enc, extra={"basis": basis, "actions": actions})
        return lay, (tuple(sorted(wanted)), basis, actions)

    def _transform(self, ws: Workspace, spec: SourceSpec, lays: list[CsvLayout]) -> Staged:
        """`_stage` (raw report lines of one layout, `_file` each) -> platform_report rows."""
        wanted, basis, actions = lays[0].wanted, lays[0].extra["basis"], lays[0].extra["actions"]
        conv, value, action = "conv" in wanted, "val" in wanted, "action" in wanted
        default_event = spec.options.get("event_name", ws.config.conversion_event)
        d = parsing.quote_ident("day")
        date_sql = (f"coalesce(CAST(try_strptime(trim({d}), '%Y-%m-%d') AS DATE), CAST(try_strptime(trim({d}), '%b %d, %Y') AS DATE), "
                    f"CAST(try_strptime(trim({d}), '%d %b %Y') AS DATE), CAST(try_strptime(trim({d}), '%d/%m/%Y') AS DATE))")
        parts = []
        if conv and not actions:
            ev = f"coalesce(NULLIF(trim({parsing.quote_ident('action')}), ''), $ev)" if action else "$ev"
            val = number(parsing.quote_ident("val")) if value else "NULL"
            dest = f"NULLIF(trim({parsing.quote_ident('action')}), '')" if action else "CAST(NULL AS VARCHAR)"
            parts.append(f"SELECT _file, _rec, _line, 0 AS k, {d} AS raw_day, {ev} AS event_name, {dest} AS destination, "
                         f"{number(parsing.quote_ident('conv'))} AS conversions, {val} AS value FROM _stage")
        for i in range(len(actions)):
            parts.append(f"SELECT _file, _rec, _line, {i + 1} AS k, {d} AS raw_day, $a{i} AS event_name, $a{i} AS destination, "
                         f"{number(parsing.quote_ident(f'p{i}'))} AS conversions, NULL AS value FROM _stage")
        params = {"ev": default_event, **{f"a{i}": a for i, a in enumerate(actions)}}
        ws.execute(f"CREATE OR REPLACE TEMP TABLE _rows AS {' UNION ALL '.join(parts)}", params)
        skipped = dict(ws.rows("SELECT _file, count(*) FROM _stage WHERE lower(trim(day)) LIKE 'total%' GROUP BY _file"))
        # pivot columns only: a day whose every cell is empty or zero gives no row; counted as skipped
        # (it vanished from the accounting)
        empty_days = {} if conv else dict(ws.rows(
            "SELECT _file, count(*) FROM (SELECT _file, _rec FROM _rows WHERE lower(trim(raw_day)) NOT LIKE 'total%' "
            "GROUP BY _file, _rec HAVING NOT bool_or(coalesce(try_cast(conversions AS DOUBLE) <> 0, FALSE))) GROUP BY _file"))
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stage AS
            SELECT r._file, row_number() OVER (ORDER BY r._file, r._rec, r.k) AS _rec, coalesce(r._line, r._rec + $hdr) AS _line,
                   'google' AS platform, CAST({date_sql.replace(d, 'r.raw_day')} AS VARCHAR) AS date,
                   r.event_name, r.destination, r.conversions, r.value, 'total' AS source,
                   $basis AS date_basis
            FROM _rows r WHERE lower(trim(r.raw_day)) NOT LIKE 'total%'
              AND (r.k = 0 OR try_cast(r.conversions AS DOUBLE) <> 0)
        """, {"hdr": lays[0].skip, "basis": basis})
        ws.execute("DROP TABLE IF EXISTS _rows")
        notes = {}
        for lay in lays:
            n, n_empty = skipped.get(str(lay.file), 0), empty_days.get(str(lay.file), 0)
            note = f"{n} summary rows (Total: …) skipped" if n else ""
            if actions:
                note = "; ".join(x for x in (note, f"{len(actions)} conversion actions unpivoted; empty cells skipped") if x)
            if n_empty:
                note = "; ".join(x for x in (note, f"{n_empty} days with no conversion in any action skipped") if x)
            if basis == "interaction":
                note = "; ".join(x for x in (note, "only interaction-dated conversions (dated by the ad click, "
                                                   "recent days still growing): download `Conversions (by conv. time)` "
                                                   "to compare with logs by conversion day") if x)
            notes[str(lay.file)] = note
        return Staged(columns=dict.fromkeys(("platform", "date", "event_name", "destination", "conversions", "value",
                                             "source", "date_basis"), "VARCHAR"),
                      file_notes=notes, file_skipped={str(lay.file): int(skipped.get(str(lay.file), 0) + empty_days.get(str(lay.file), 0))
                                    for lay in lays},
                      file_ignored={str(lay.file): tuple(c for c in lay.header if c not in set(lay.wanted.values()))
                                    for lay in lays})
