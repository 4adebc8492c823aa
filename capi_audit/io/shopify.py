"""`shopify_orders`: the shop platform's order export CSV -> orders.

The export has one row per line item; only an order's first row carries order-level fields, and
continuation rows repeat `Name`, `Email` and `Created at`. Rows are collapsed per `Name` (the
order reference) keeping the first non-empty `Created at`, `Total`, `Currency` and billing (else
shipping) country. Ads consent is read from `Note Attributes` (`consent_ads: granted`, or the
attribute named in `options.consent_attribute`); a tag named like `options.test_tag` (default
`test`) marks a test order. Emails and phone numbers are normalized and hashed per platform into
`identities` (io/identities.py) and never stored in clear; the load report counts them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import parsing, schema
from capi_audit.errors import InputError
from capi_audit.io.base import Reader, Staged, ensure_file
from capi_audit.io.canonical import read_header, stage_csv
from capi_audit.io.csvtools import pick
from capi_audit.io.multi import CsvLayout, LayoutGlob, one_file

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

FIELDS = {
    "name": ("Name", "Order Name", "Order"),
    "created": ("Created at", "Created At"),
    "total": ("Total",),
    "currency": ("Currency",),
    "billing_country": ("Billing Country",),
    "shipping_country": ("Shipping Country",),
    "tags": ("Tags",),
    "notes": ("Note Attributes",),
    "email": ("Email",),
    "phone": ("Phone", "Billing Phone", "Shipping Phone"),
}


class ShopifyOrdersReader(LayoutGlob, Reader):
    """Shopify order exports (one row per line item) into orders. In a glob, orders are collapsed
    within each file, as when the files load one by one."""

    name = "shopify_orders"
    tables = ("orders",)
    options = {"consent_attribute": str, "test_tag": str}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per order; continuation rows are counted into it."""
        ensure_file(file)
        lay, _ = self._layout(ws, spec, file)
        csv_note = stage_csv(ws, file, list(lay.header), lay.wanted, skip=1, file_column=True)
        return one_file(self._transform(ws, spec, [lay]), file, csv_note)

    def _layout(self, ws: Workspace, spec: SourceSpec, file: Path) -> tuple[CsvLayout, tuple]:
        cols = read_header(file)
        found = {k: pick(cols, v) for k, v in FIELDS.items()}
        for req in ("name", "created"):
            if not found[req]:
                raise InputError(f"{file}: required column {FIELDS[req][0]!r} is missing")
        wanted = {k: v for k, v in found.items() if v}
        return CsvLayout(file, tuple(cols), wanted), tuple(sorted(wanted))

    def _transform(self, ws: Workspace, spec: SourceSpec, lays: list[CsvLayout]) -> Staged:
        """`_stage` (line-item rows of one layout, `_file` each) -> one row per order and file."""
        found = {k: lays[0].wanted.get(k) for k in FIELDS}
        # the attribute name is data: escaped for the regex and bound as a parameter, never pasted
        attr = "|".join(re.escape(a) for a in
                        spec.options.get("consent_attribute", "consent_ads|ads_consent|ad_consent|ad_user_data").split("|"))
        attr_re = "(?i)(?:" + attr + r")\s*:\s*([A-Za-z_]+)"
        test_tag = spec.options.get("test_tag", "test")
        q = parsing.quote_ident
        # the first non-empty value of an order's rows: arg_min by record (an ordered `first(... ORDER
        # BY _rec)` kept a sort per order: 1.1 million line items took 0.9 GB)
        first = lambda c: f"arg_min(NULLIF(trim({q(c)}), ''), _rec) FILTER (WHERE NULLIF(trim({q(c)}), '') IS NOT NULL)"  # noqa: E731
        country = (f"coalesce({first('billing_country')}, {first('shipping_country')})" if found["shipping_country"] and found["billing_country"]
                   else first("billing_country") if found["billing_country"] else "NULL")
        notes_sql = ("NULLIF(regexp_extract(" + first("notes") + ", $attr_re, 1), '')" if found["notes"] else "NULL")
        tags_sql = ("CASE WHEN list_contains(list_transform(string_split(lower(coalesce(" + first("tags")
                    + ", '')), ','), lambda t: trim(t)), $tag) THEN 'true' ELSE 'false' END" if found["tags"] else "NULL")
        dropped = {f: (e, p) for f, e, p in ws.rows(
            f"SELECT _file, {'count(' + q('email') + ')' if found['email'] else '0'}, "
            f"{'count(' + q('phone') + ')' if found['phone'] else '0'} FROM _stage GROUP BY _file")}
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stage AS
            SELECT _file, row_number() OVER (ORDER BY _file, min(_rec)) AS _rec, coalesce(min(_line), min(_rec) + 1) AS _line,
                count(*) AS _weight,
                NULLIF(trim({q('name')}), '') AS order_id,
                {first('created')} AS created_at,
                {first('total') if found['total'] else 'NULL'} AS value,
                {first('currency') if found['currency'] else 'NULL'} AS currency,
                {country} AS country,
                {notes_sql} AS consent_ads,
                {tags_sql} AS is_test,
                {first('email') if found['email'] else 'NULL'} AS email,
                {first('phone') if found['phone'] else 'NULL'} AS phone
            FROM _stage GROUP BY _file, NULLIF(trim({q('name')}), ''), CASE WHEN NULLIF(trim({q('name')}), '') IS NULL THEN _rec END
        """, {"tag": test_tag.lower(), "attr_re": attr_re})
        n_orders = dict(ws.rows("SELECT _file, count(*) FROM _stage GROUP BY _file"))
        notes = {}
        for lay in lays:
            f = str(lay.file)
            note = f"{n_orders.get(f, 0)} orders from line-item rows"
            n_em, n_ph = dropped.get(f, (0, 0))
            if n_em or n_ph:
                note += (f"; {n_em} emails and {n_ph} phone numbers hashed per platform into identities "
                         "(never stored in clear)")
            notes[f] = note
        ident = tuple(k for k in ("email", "phone") if found[k])
        return Staged(columns=dict.fromkeys(("order_id", "created_at", "value", "currency", "country", "consent_ads",
                                             "is_test", *ident), "VARCHAR"), weighted=True, file_notes=notes,
                      file_ignored={str(lay.file): tuple(c for c in lay.header if c not in set(lay.wanted.values()))
                                    for lay in lays})
