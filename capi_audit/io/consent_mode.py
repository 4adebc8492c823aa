"""Google Consent Mode parameters on Google tag requests: `gcs` and `gcd`.

`gcs` = `G1<ad_storage><analytics_storage>`, 1 granted / 0 denied; absent means Consent Mode is
not active on the hit (https://support.google.com/tagmanager/answer/13802165).

`gcd` is not documented by Google; its reverse-engineered layout: version digits, then for
ad_storage, analytics_storage, ad_user_data and ad_personalization (in that order) a separator
digit and one letter, then a trailing part (`13r3r3r3r5l1`). Each letter is a base64url index
(`0-9a-zA-Z-_`) whose bits 2-3 are the default state and bits 0-1 the update state (1 not set,
2 denied, 3 granted); the effective state is the update when set, else the default. The
letters are read positionally, so a hit carrying another layout decodes to unknown, never to a
wrong state when the letter is not one of the states (documented by Analytics Debugger's
"Google Consent Parser" server-side GTM template and by Markus Baersch at simoahava.com).
"""

from __future__ import annotations

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
GCD_TYPES = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
_STATE = {2: "denied", 3: "granted"}


def letter_state(letter: str) -> str | None:
    """Effective consent state of one gcd letter (update if set, else default), or None."""
    idx = ALPHABET.find(letter)
    if idx < 0:
        return None
    default, update = (idx >> 2) & 3, idx & 3
    return _STATE.get(update) or _STATE.get(default)


def decode_gcd(gcd: str) -> dict[str, str | None]:
    """Consent type -> 'granted' / 'denied' / None from a gcd string."""
    letters = [c for c in gcd if not c.isdigit()]
    return {t: (letter_state(letters[i]) if i < len(letters) else None) for i, t in enumerate(GCD_TYPES)}


def gcs_ad_storage_sql(gcs: str) -> str:
    """SQL: ad_storage from a gcs value (G1xy)."""
    return (f"CASE WHEN regexp_full_match({gcs}, 'G1[01-][01-]') THEN "
            f"CASE substr({gcs}, 3, 1) WHEN '1' THEN 'granted' WHEN '0' THEN 'denied' END END")


def gcs_analytics_storage_sql(gcs: str) -> str:
    """SQL: analytics_storage from a gcs value (G1xy)."""
    return (f"CASE WHEN regexp_full_match({gcs}, 'G1[01-][01-]') THEN "
            f"CASE substr({gcs}, 4, 1) WHEN '1' THEN 'granted' WHEN '0' THEN 'denied' END END")


def gcd_sql(gcd: str, consent_type: str) -> str:
    """SQL: one consent type's effective state from a gcd value (NULL when unknown)."""
    pos = GCD_TYPES.index(consent_type) + 1
    letter = f"regexp_extract_all({gcd}, '[A-Za-z_-]')[{pos}]"
    whens = " ".join(f"WHEN '{c}' THEN '{s}'" for c in ALPHABET[10:]
                     if (s := letter_state(c)) is not None)
    # CASE on a constant table of letters built from the bit layout above (no user data)
    return f"CASE {letter} {whens} END"
