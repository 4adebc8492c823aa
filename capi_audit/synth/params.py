"""Parameters of a synthetic scenario; every rate is planted and every default is sensible."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Dedup defects, one (or none) per order and platform, so each extra count has one cause.
DEFECTS = (
    "none",
    "pixel_missing_event_id",  # browser hit without eid (eventID passed in the wrong argument)
    "id_mismatch",             # server sends its own id instead of the pixel's
    "server_missing_event_id",
    "name_mismatch",           # server sends 'purchase' where the pixel sends 'Purchase'
    "late",                    # server sends after the dedup window
    "retry_same_key",          # server retry with the same id (same-channel duplicate)
    "retry_new_id",            # server retry that mints a new id (double count)
    "too_old",                 # sent more than 7 days after the event: Meta rejects it
)


@dataclass(frozen=True)
class ScenarioParams:
    """What a scenario plants. Rates are probabilities per order (or per server event)."""

    seed: int = 7
    days: int = 60
    start: str = "2026-02-01"
    timezone: str = "Europe/Berlin"
    orders_per_day: float = 60.0
    weekday_factors: tuple[float, ...] = (1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 0.75)
    platforms: tuple[str, ...] = ("meta", "google")
    enable_day: dict[str, int] = field(default_factory=lambda: {"meta": 30, "google": 35})
    sales_growth_after_enable: float = 0.10  # real new sales (net-new truth), from meta's enable day
    countries: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        # country: (share of orders, ads-consent denial rate)
        "DE": (0.35, 0.30), "FR": (0.20, 0.25), "US": (0.30, 0.05), "GB": (0.15, 0.20)})
    consent_unknown_rate: float = 0.03
    browsers: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        # browser: (share, browser loss rate from blockers / tracking prevention)
        "chrome": (0.60, 0.08), "safari": (0.30, 0.25), "firefox": (0.10, 0.15)})
    test_order_rate: float = 0.01
    pixel_despite_denied: float = 0.05
    server_despite_denied: float = 0.30
    ldu_share_of_denied_sends: float = 0.50
    server_gap_rate: float = 0.05
    pixel_reload_rate: float = 0.05
    defect_rates: dict[str, float] = field(default_factory=lambda: {
        "pixel_missing_event_id": 0.03, "id_mismatch": 0.04, "server_missing_event_id": 0.02,
        "name_mismatch": 0.03, "late": 0.03, "retry_same_key": 0.04, "retry_new_id": 0.02,
        "too_old": 0.01})
    latency_median_s: float = 90.0
    latency_sigma: float = 1.3
    latency_cap_s: int = 6 * 3600
    # match keys on server events: presence and defect rates
    key_presence: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "meta": {"em": 0.85, "ph": 0.55, "fn": 0.40, "ln": 0.40, "ct": 0.35, "st": 0.20, "zp": 0.35,
                 "country": 0.35, "ge": 0.10, "db": 0.10, "external_id": 0.60,
                 "client_ip_address": 0.93, "client_user_agent": 0.96, "fbp": 0.80, "fbc": 0.30},
        "google": {"em": 0.60, "ph": 0.40, "gclid": 0.75}})
    em_plaintext_rate: float = 0.02
    em_empty_hash_rate: float = 0.01
    em_uppercase_rate: float = 0.01
    ph_plaintext_rate: float = 0.02
    server_ip_rate: float = 0.03      # the server's own IP instead of the client's
    private_ip_rate: float = 0.01
    library_ua_rate: float = 0.02     # an HTTP library's user agent instead of the browser's
    fbp_malformed_rate: float = 0.01
    fbc_seconds_rate: float = 0.05    # fbc creation time in seconds instead of milliseconds
    fbc_stale_rate: float = 0.05      # fbc from a click more than 90 days before the event
    missing_action_source_rate: float = 0.01
    missing_source_url_rate: float = 0.01
    missing_value_rate: float = 0.01
    missing_currency_rate: float = 0.01
    invalid_currency_rate: float = 0.005
    weak_keys_rate: float = 0.01      # payload with only keys Meta rejects as insufficient
    # linkage realism (synth/linkage.py): a share of thank-you page reloads (on orders without a
    # dedup defect) fire without eid — double counting that exists without the server; and
    # order statuses other than paid
    reload_without_eid_share: float = 0.5
    order_status_rates: dict[str, float] = field(default_factory=lambda: {"refunded": 0.03, "pending": 0.01})
    # server keys hashed wrongly, found by hash agreement against the shop's own (hashed) data:
    # the email hashed as typed (only customers who typed it with capitals), hashed twice, and the
    # phone hashed without its country code
    em_unnormalized_rate: float = 0.03
    em_hashed_twice_rate: float = 0.01
    ph_no_country_rate: float = 0.03
    # too-old sends whose response was not logged (status empty): the audit assumes Meta rejected
    # them; some shared their request with a good event (no status either): batch collateral
    too_old_unlogged_share: float = 0.5
    old_batch_share: float = 0.5
    # id-level linkage plants on Meta (synth/ids.py): pixel hits carrying the order only as eid,
    # a legitimate Subscribe next to Purchase, pairs of orders sharing one id, one post day on
    # which a few pixel hits send the eid 'undefined', and hits also sent to a second dataset
    eid_only_share: float = 0.10
    subscribe_share: float = 0.03
    collision_pair_rate: float = 0.01
    sentinel_day_offset: int = 5
    sentinel_orders: int = 6
    second_dataset_share: float = 0.02
    customer_pool: int = 100_000
    # Realism of orders and reports (synth/realism.py, synth/reports.py); defaults plant none of it.
    orders_day_cv: float = 0.0        # day-level gamma noise on the order rate (overdispersion)
    capture_drift: float = 0.0        # extra browser loss rising linearly from 0 to this at the last day
    qa_test_share: float = 0.0        # share of orders that are QA tests from 2 days before to 2 after go-live
    report_share_pre: float = 1.0     # share of counted conversions the report attributes, before enablement
    report_share_post: float = 1.0    # ... and after (a change in attributed share at enablement)
    report_modelled: float = 0.0      # modelled conversions added, as a fraction of attributed ones
    report_date_basis: str = "conversion"  # conversion | interaction | both
    report_lag_probs: tuple[float, ...] = (0.45, 0.25, 0.15, 0.10, 0.05)  # click-to-conversion lag in days
    report_immature_days: int = 0     # the last days are not yet restated (partly counted)
    report_gap_days: tuple[int, ...] = ()  # scenario days missing from the report
    burn_in_days: int = 2
    settle_days: int = 3

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for truth.json."""
        d = asdict(self)
        d["weekday_factors"] = list(self.weekday_factors)
        d["platforms"] = list(self.platforms)
        d["countries"] = {k: list(v) for k, v in self.countries.items()}
        d["browsers"] = {k: list(v) for k, v in self.browsers.items()}
        d["report_lag_probs"] = list(self.report_lag_probs)
        d["report_gap_days"] = list(self.report_gap_days)
        return d
