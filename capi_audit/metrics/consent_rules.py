"""Per-order consent classification, per platform — the ONE place these rules live (used by the
consent family and by the CAPI-effect split of recovered orders).

For an order o and a platform p:
- the *governing* consent is the type that decides whether p may receive the order's data:
  Meta: the ads consent recorded at checkout (`orders.consent_ads`; Meta's CAPI has no consent
  field, the sender must decide before sending, https://developers.facebook.com/docs/meta-pixel/implementation/gdpr);
  Google Ads and GA4: `ad_user_data` (`orders.consent_ad_user_data`), which governs sending user
  data for ads, uploads included (https://support.google.com/google-ads/answer/14310715). When
  the orders record no ad_user_data at all, the ads consent stands in for it and the consent
  headline says so (`governing_consent`).
- a server send is *restricted* — not a violation — only when the platform's restriction
  applies: Meta Limited Data Use (`data_processing_options` LDU) on a US order (LDU is a
  US-state-law control, https://developers.facebook.com/docs/marketing-api/data-processing-options;
  an LDU flag on any other order, unknown country included, is `ldu_outside_us`, still a
  violation); Google / GA4 sends marked `ad_user_data` denied (Google does not use their user
  data for ads).
- class: `granted`; `unknown` (no consent recorded); `denied_restricted` (denied, and no send of
  p's server channel escaped the restriction — including orders with no send at all);
  `denied_violation` (denied, and at least one unrestricted send).

Every server row counts as a send (accepted or not: it was sent). Orders link by order_id, else
by event_id when it equals an order id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

CLASSES = ("granted", "unknown", "denied_restricted", "denied_violation")
LDU_COUNTRIES = ("US",)
GOOGLE_PLATFORMS = ("google", "ga4")
TABLE = "order_consent"


def linked_sql(table: str) -> str:
    """SQL: the rows of an event table with `linked_order` (order_id, else event_id when it is an
    order id)."""
    return (f"SELECT e.*, coalesce(e.order_id, oe.order_id) AS linked_order FROM {table} e "
            f"LEFT JOIN (SELECT DISTINCT order_id FROM orders) oe ON e.order_id IS NULL AND oe.order_id = e.event_id")


def governing_column(ws: Workspace, platform: str) -> str:
    """`consent_ad_user_data` for Google / GA4 when the orders record it, else `consent_ads`."""
    if platform in GOOGLE_PLATFORMS and ws.scalar(
            "SELECT count(*) FROM orders WHERE consent_ad_user_data IS NOT NULL"):
        return "consent_ad_user_data"
    return "consent_ads"


def restricted_sql() -> str:
    """SQL over a server row `s` joined to its order `o`: the send is restricted."""
    ldu = " , ".join(f"'{c}'" for c in LDU_COUNTRIES)
    google = ", ".join(f"'{p}'" for p in GOOGLE_PLATFORMS)
    return (f"((s.platform = 'meta' AND upper(coalesce(s.data_processing_options, '')) LIKE '%LDU%' "
            f"AND upper(coalesce(o.country, '')) IN ({ldu})) "
            f"OR (s.platform IN ({google}) AND s.consent_ad_user_data = 'denied'))")


def ldu_outside_us_sql() -> str:
    """SQL over `s` joined to `o`: an LDU flag on an order that is not known to be a US order."""
    ldu = " , ".join(f"'{c}'" for c in LDU_COUNTRIES)
    return (f"(s.platform = 'meta' AND upper(coalesce(s.data_processing_options, '')) LIKE '%LDU%' "
            f"AND upper(coalesce(o.country, '')) NOT IN ({ldu}))")


def materialize(ws: Workspace) -> str:
    """Create `order_consent(platform, order_id, consent, governing, has_server, unrestricted,
    ldu_outside_us, consent_class)`: one row per platform seen in an event table and order.
    Idempotent per loaded data; returns the table name."""
    token = (id(ws.config), ws.count("orders"), ws.count("server_events"), ws.count("pixel_events"))
    if getattr(ws, "_order_consent_for", None) == token:
        return TABLE
    plats = [r[0] for r in ws.rows("SELECT platform FROM pixel_events UNION SELECT platform FROM server_events ORDER BY 1")
             if r[0] is not None]
    parts = []
    for plat in plats:
        col = governing_column(ws, plat)
        parts.append(f"""
            SELECT '{plat}' AS platform, o.order_id, o.{col} AS consent, '{col}' AS governing,
                   CASE WHEN s.order_id IS NULL THEN 0 ELSE 1 END AS has_server,
                   coalesce(s.unrestricted, 0) AS unrestricted, coalesce(s.ldu_outside_us, 0) AS ldu_outside_us
            FROM (SELECT order_id, min({col}) AS {col} FROM orders GROUP BY order_id) o
            LEFT JOIN (
                SELECT s.linked_order AS order_id,
                       max(CASE WHEN {restricted_sql()} THEN 0 ELSE 1 END) AS unrestricted,
                       max(CASE WHEN {ldu_outside_us_sql()} THEN 1 ELSE 0 END) AS ldu_outside_us
                FROM ({linked_sql('server_events')}) s
                JOIN (SELECT order_id, min(country) AS country FROM orders GROUP BY order_id) o ON o.order_id = s.linked_order
                WHERE s.platform = '{plat}'
                GROUP BY s.linked_order
            ) s ON s.order_id = o.order_id""")
    body = " UNION ALL ".join(parts) if parts else (
        "SELECT CAST(NULL AS VARCHAR) AS platform, CAST(NULL AS VARCHAR) AS order_id, CAST(NULL AS VARCHAR) AS consent, "
        "CAST(NULL AS VARCHAR) AS governing, 0 AS has_server, 0 AS unrestricted, 0 AS ldu_outside_us WHERE FALSE")
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE {TABLE} AS
        SELECT *, CASE WHEN consent = 'granted' THEN 'granted' WHEN consent IS NULL THEN 'unknown'
                       WHEN unrestricted = 1 THEN 'denied_violation' ELSE 'denied_restricted' END AS consent_class
        FROM ({body})
    """)
    ws._order_consent_for = token
    return TABLE
