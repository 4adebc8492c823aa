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
CASE, upper, LIKE, coalesce).
"""

from __future__ import annotations

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
