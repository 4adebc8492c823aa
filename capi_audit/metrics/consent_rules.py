"""The consent state of an order and whether a server send is restricted — one place for the rule
(design §3.6), shared by the CAPI-effect split (§3.3) and the consent family.

- An order's state is `granted`, `unknown` (no recorded state) or denied; a denied order reached by
  server sends is `denied_restricted` when every send the platform received for it is restricted,
  else `denied_violation`.
- A send is *restricted* only where the platform's restriction applies:
  Meta Limited Data Use (`data_processing_options` contains LDU) for a US order — LDU is a US
  state-law flag, so on an EU/UK denied order it restricts nothing
  (https://developers.facebook.com/docs/marketing-apis/data-processing-options);
  Google uploads sent with `ad_user_data` denied
  (https://developers.google.com/google-ads/api/docs/conversions/upload-clicks#consent).
- For Google the order's ad_user_data state governs uploads; ad_storage (`consent_ads`) stands in
  when ad_user_data was not recorded.

The functions return SQL expressions over the column expressions they are given (portable SQL:
CASE, upper, LIKE, coalesce). `materialize(ws)` applies them once to every order and platform
(table `order_consent`) for the consent family: there a denied order with no send at all counts
as restricted (nothing escaped the restriction), and `ldu_outside_us` marks denied orders whose
LDU flag did not cover them because the order is not a US order. Orders link as the counted units link them
(`[audit] order_key`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

CONSENT_STATES = ("granted", "unknown", "denied_restricted", "denied_violation")


def order_consent_sql(platform: str, consent_ads: str, consent_ad_user_data: str) -> str:
    """SQL: the order's recorded consent ('granted', 'denied' or NULL) that governs a platform's
    server sends."""
    return (f"CASE WHEN {platform} = 'meta' THEN lower({consent_ads}) "
            f"ELSE lower(coalesce({consent_ad_user_data}, {consent_ads})) END")


def restricted_send_sql(platform: str, data_processing_options: str, send_ad_user_data: str,
                        send_consent_ads: str, order_country: str) -> str:
    """SQL: TRUE when one server send falls under the platform's restriction."""
    return (f"(({platform} = 'meta' AND upper(coalesce({data_processing_options}, '')) LIKE '%LDU%' "
            f"AND upper(coalesce({order_country}, '')) = 'US') "
            f"OR ({platform} <> 'meta' AND lower(coalesce({send_ad_user_data}, {send_consent_ads}, '')) = 'denied'))")


def consent_state_sql(order_consent: str, all_sends_restricted: str) -> str:
    """SQL: one of CONSENT_STATES from the order's consent and whether every send was restricted
    (an integer 1/0 or boolean expression; NULL when the order had no send)."""
    return (f"CASE WHEN {order_consent} = 'granted' THEN 'granted' "
            f"WHEN {order_consent} = 'denied' AND coalesce({all_sends_restricted}, 0) = 1 THEN 'denied_restricted' "
            f"WHEN {order_consent} = 'denied' THEN 'denied_violation' ELSE 'unknown' END")


TABLE = "order_consent"


def linked_sql(table: str) -> str:
    """SQL: the rows of an event table with `linked_order`, by the same rule as the counted units
    (`[audit] order_key`, bound as `$order_key`): order_id when it is a known order, else event_id
    when it equals a known order id (`auto`); only one of them with `order_id` / `event_id`."""
    return (f"SELECT e.*, CASE WHEN $order_key <> 'event_id' AND ko.order_id IS NOT NULL THEN ko.order_id "
            f"WHEN $order_key <> 'order_id' AND ke.order_id IS NOT NULL THEN ke.order_id END AS linked_order "
            f"FROM {table} e "
            f"LEFT JOIN (SELECT DISTINCT order_id FROM orders) ko ON ko.order_id = e.order_id "
            f"LEFT JOIN (SELECT DISTINCT order_id FROM orders) ke ON ke.order_id = e.event_id")


def ldu_outside_us_sql(platform: str, data_processing_options: str, order_country: str) -> str:
    """SQL: a Meta send flagged LDU for an order not known to be a US order (LDU restricts nothing there)."""
    return (f"({platform} = 'meta' AND upper(coalesce({data_processing_options}, '')) LIKE '%LDU%' "
            f"AND upper(coalesce({order_country}, '')) <> 'US')")


def governing_name(platform: str, ws: Workspace) -> str:
    """Which consent type governs a platform's server sends in these orders (for the headline)."""
    if platform == "meta":
        return "ad_storage"
    known = ws.scalar("SELECT count(*) FROM orders WHERE consent_ad_user_data IS NOT NULL")
    return "ad_user_data" if known else "ad_storage (ad_user_data not recorded)"


def materialize(ws: Workspace) -> str:
    """Create `order_consent(platform, order_id, consent, has_server, unrestricted, ldu_outside_us,
    consent_class)`: one row per order and platform seen in an event table. Idempotent per loaded
    data; returns the table name."""
    token = (id(ws.config), ws.count("orders"), ws.count("server_events"), ws.count("pixel_events"))
    if getattr(ws, "_order_consent_for", None) == token:
        return TABLE
    restricted = restricted_send_sql("s.platform", "s.data_processing_options", "s.consent_ad_user_data",
                                     "s.consent_ads", "o.country")
    outside = ldu_outside_us_sql("s.platform", "s.data_processing_options", "o.country")
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE {TABLE} AS
        WITH o AS (SELECT order_id, min(consent_ads) AS consent_ads, min(consent_ad_user_data) AS consent_ad_user_data,
                          min(country) AS country FROM orders GROUP BY order_id),
        p AS (SELECT DISTINCT platform FROM pixel_events WHERE platform IS NOT NULL
              UNION SELECT DISTINCT platform FROM server_events WHERE platform IS NOT NULL),
        s AS (
            SELECT s.platform, s.linked_order AS order_id,
                   max(CASE WHEN {restricted} THEN 0 ELSE 1 END) AS unrestricted,
                   max(CASE WHEN {outside} THEN 1 ELSE 0 END) AS ldu_outside_us
            FROM ({linked_sql('server_events')}) s JOIN o ON o.order_id = s.linked_order
            GROUP BY s.platform, s.linked_order
        ),
        x AS (
            SELECT p.platform, o.order_id, {order_consent_sql('p.platform', 'o.consent_ads', 'o.consent_ad_user_data')} AS consent,
                   CASE WHEN s.order_id IS NULL THEN 0 ELSE 1 END AS has_server,
                   coalesce(s.unrestricted, 0) AS unrestricted, coalesce(s.ldu_outside_us, 0) AS ldu_outside_us
            FROM p CROSS JOIN o LEFT JOIN s ON s.platform = p.platform AND s.order_id = o.order_id
        )
        SELECT *, {consent_state_sql('consent', '1 - unrestricted')} AS consent_class FROM x
    """, {"order_key": getattr(ws.config, "order_key", "auto")})
    ws._order_consent_for = token
    return TABLE
