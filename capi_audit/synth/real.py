"""Write a canonical scenario again in the real-world formats the adapters read.

orders -> Shopify order export (one row per line item, consent in Note Attributes, raw emails);
Meta pixel -> pixel request URLs; Google tag -> GA4 BigQuery export rows; Meta server events ->
logged CAPI requests with responses; Google server events -> click-conversion upload CSV (plus
send time, order and upload status columns mapped in audit.toml); platform reports -> Ads
Manager and Google Ads exports. The audit of these files must equal the canonical audit.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd

PIXEL_ID = "1234567890"


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def write_real_formats(canonical: Path, out: Path, *, timezone: str, enabled: dict[str, str]) -> Path:
    """Convert the canonical CSVs in `canonical` into real formats in `out`; return its audit.toml."""
    out.mkdir(parents=True, exist_ok=True)
    _shopify(_read(canonical, "orders"), out / "shopify_orders.csv")
    pixel = _read(canonical, "pixel_events")
    _pixel_urls(pixel[pixel.platform == "meta"], out / "meta_pixel_hits.txt")
    _google_tag(pixel[pixel.platform == "google"], out / "google_tag_hits.log")
    _ga4(pixel[pixel.platform == "ga4"], out / "ga4_events.jsonl")
    server = _read(canonical, "server_events")
    _capi(server[server.platform == "meta"], out / "meta_capi_requests.jsonl")
    _clicks(server[server.platform == "google"], out / "google_click_conversions.csv")
    _mp(server[server.platform == "ga4"], out / "ga4_mp_requests.jsonl")
    if (canonical / "enhancements.csv").exists():
        _enhancements(_read(canonical, "enhancements"), out / "google_enhancements.jsonl")
    report = _read(canonical, "platform_report")
    _meta_ads(report[report.platform == "meta"], out / "meta_ads_export.csv")
    _google_report(report[report.platform == "google"], out / "google_ads_report.csv")
    lines = ["# The same scenario as the canonical files, in real-world formats.", "[audit]",
             f'timezone = "{timezone}"', "dedup_window_hours = 48", 'conversion_event = "Purchase"', "",
             "[capi_enabled_at]"] + [f'{k} = "{v}"' for k, v in sorted(enabled.items())]
    sources = [
        ("orders", "shopify_orders.csv", "shopify_orders", ""),
        ("pixel_events", "meta_pixel_hits.txt", "meta_pixel_hits", ""),
        ("pixel_events", "google_tag_hits.log", "google_tag_hits", f'options = {{ actions = {{ "{ADS_LABEL}" = "Purchase" }} }}'),
        ("pixel_events", "ga4_events.jsonl", "ga4_export", f'options = {{ measurement_id = "{GA4_ID}" }}'),
        ("server_events", "ga4_mp_requests.jsonl", "ga4_mp_payload", ""),
        ("server_events", "meta_capi_requests.jsonl", "meta_capi_payload", ""),
        ("server_events", "google_click_conversions.csv", "google_ads_click_conversions",
         'columns = { sent_at = "Sent At", order_id = "Shop Order ID", status = "Upload Status", ct = "City", '
         'st = "Region", zp = "Postal Code", country = "Country" }'),
        ("platform_report", "meta_ads_export.csv", "meta_ads_export", ""),
        ("platform_report", "google_ads_report.csv", "google_ads_report", ""),
    ]
    if (out / "google_enhancements.jsonl").exists():
        sources.append(("enhancements", "google_enhancements.jsonl", "google_upload_log",
                        f'options = {{ actions = {{ "{ADS_ACTION}" = "Purchase" }} }}'))
    for table, path, fmt, extra in sources:
        lines += ["", "[[sources]]", f'table = "{table}"', f'path = "{path}"', f'format = "{fmt}"']
        if extra:
            lines.append(extra)
    (out / "audit.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / "audit.toml"


def _shopify(orders: pd.DataFrame, path: Path) -> None:
    cols = ["Name", "Email", "Financial Status", "Created at", "Currency", "Total", "Lineitem quantity",
            "Lineitem name", "Billing Country", "Tags", "Note Attributes", "Phone"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        for i, o in enumerate(orders.itertuples()):
            created = o.created_at.replace("T", " ")
            created = created[:-5] + " " + created[-5:]
            note = f"consent_ads: {o.consent_ads}" if o.consent_ads else ""
            tags = "test, internal" if o.is_test == "true" else ""
            email = getattr(o, "Email", f"buyer{i}@example.com")
            phone = getattr(o, "Phone", "")
            w.writerow([o.order_id, email, "paid", created, o.currency, o.value, "1",
                        "Snowboard", o.country, tags, note, phone])
            if i % 3 == 0:  # a second line item: only Name, Email and Created at repeat
                w.writerow([o.order_id, email, "", created, "", "", "2", "Wax", "", "", "", ""])


def _pixel_urls(px: pd.DataFrame, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in px.itertuples():
            params = [("id", r.destination or PIXEL_ID), ("ev", r.event_name), ("eid", r.event_id), ("ts", r.event_time),
                      ("cd[value]", r.value), ("cd[currency]", r.currency), ("cd[order_id]", r.order_id),
                      ("fbp", r.fbp), ("fbc", r.fbc), ("dl", r.page_url)]
            q = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params if v)
            fh.write(f"https://www.facebook.com/tr/?{q}\n")


ADS_ID, ADS_LABEL = "987654321", "AbC-D_efGhI"
GA4_ID = "G-SYNTH0001"
ADS_ACTION = "customers/1234567890/conversionActions/555"


def _enhancements(enh: pd.DataFrame, path: Path) -> None:
    """Enhanced conversions for web as logged Google Ads API adjustment uploads (one request per day)."""
    with open(path, "w", encoding="utf-8") as fh:
        for day, g in enh.groupby(enh.adjusted_at.str[:10], sort=True):
            adj = [{"conversionAction": ADS_ACTION, "adjustmentType": "ENHANCEMENT", "orderId": r.order_id,
                    "adjustmentDateTime": r.adjusted_at.replace("T", " ").replace("Z", "+00:00")} for r in g.itertuples()]
            fh.write(json.dumps({"timestamp": f"{day}T23:59:59Z", "request": {"conversionAdjustments": adj},
                                 "response": {"results": [{} for _ in adj]}}) + "\n")


def _google_tag(px: pd.DataFrame, path: Path) -> None:
    """Google Ads conversion hits as access-log lines (gcs carries ad_storage; gcd ad_user_data)."""
    gcs = {"granted": "&gcs=G111", "denied": "&gcs=G100", "": ""}
    with open(path, "w", encoding="utf-8") as fh:
        for r in px.itertuples():
            t = dt.datetime.fromtimestamp(int(r.event_time) / 1000, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
            q = f"label={ADS_LABEL}&oid={quote(r.event_id)}"
            if r.value:
                q += f"&value={r.value}"
            if r.currency:
                q += f"&currency_code={r.currency}"
            if r.gclid:
                q += f"&gclaw={quote(r.gclid)}"
            # Advanced Consent Mode: a hit in denied ad storage without a click id is a cookieless
            # ping (no _gcl_au cookie id); every other hit carries the cookie id
            if not (r.consent_ads == "denied" and not r.gclid):
                q += "&auid=1.1700000000"
            q += gcs[r.consent_ads]
            fh.write(f'81.2.69.160 - - [{t}] "GET /pagead/conversion/{ADS_ID}/?{q} HTTP/1.1" 200 42\n')


def _mp(sv: pd.DataFrame, path: Path) -> None:
    """GA4 Measurement Protocol requests as a server logs them (one request per event)."""
    with open(path, "w", encoding="utf-8") as fh:
        for r in sv.itertuples():
            body: dict = {"client_id": "555.1700000000", "timestamp_micros": int(r.event_time) * 1_000_000,
                          "events": [{"name": r.event_name, "params": {"transaction_id": r.event_id,
                                                                       "value": float(r.value), "currency": r.currency}}]}
            if r.consent_ad_user_data:
                body["consent"] = {"ad_user_data": r.consent_ad_user_data.upper()}
            if r.country:
                body["user_data"] = {"address": [{"country": r.country}]}
            fh.write(json.dumps({"timestamp": r.sent_at, "body": body,
                                 "url": f"https://www.google-analytics.com/mp/collect?measurement_id={r.destination}"
                                        "&api_secret=REDACTED"}) + "\n")


def _ga4(px: pd.DataFrame, path: Path) -> None:
    consent = {"granted": "Yes", "denied": "No", "": "Unset"}
    with open(path, "w", encoding="utf-8") as fh:
        for r in px.itertuples():
            params = [{"key": "page_location", "value": {"string_value": r.page_url}},
                      {"key": "order_id", "value": {"string_value": r.order_id}}]
            if r.value:
                params.append({"key": "value", "value": {"double_value": float(r.value)}})
            if r.currency:
                params.append({"key": "currency", "value": {"string_value": r.currency}})
            row = {"event_date": "", "event_timestamp": str(int(r.event_time) * 1000), "event_name": r.event_name,
                   "event_params": params,
                   "privacy_info": {"ads_storage": consent[r.consent_ads], "analytics_storage": consent[r.consent_ads]},
                   "collected_traffic_source": {"gclid": r.gclid or None},
                   "ecommerce": {"transaction_id": r.event_id or "(not set)"}}
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def _capi(sv: pd.DataFrame, path: Path) -> None:
    user_keys = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
                 "client_ip_address", "client_user_agent", "fbc", "fbp")
    with open(path, "w", encoding="utf-8") as fh:
        for r in sv.itertuples():
            ev: dict = {"event_name": r.event_name, "event_time": int(r.event_time)}
            if r.event_id:
                ev["event_id"] = r.event_id
            if r.action_source:
                ev["action_source"] = r.action_source
            if r.event_source_url:
                ev["event_source_url"] = r.event_source_url
            ev["user_data"] = {k: getattr(r, k) for k in user_keys if getattr(r, k)}
            custom: dict = {"order_id": r.order_id}
            if r.value:
                custom["value"] = float(r.value)
            if r.currency:
                custom["currency"] = r.currency
            ev["custom_data"] = custom
            if r.data_processing_options:
                ev["data_processing_options"] = [r.data_processing_options]
            resp = ({"error": {"message": r.error, "code": 100}} if r.status == "rejected"
                    else {"events_received": 1, "messages": []})
            fh.write(json.dumps({"sent_at": r.sent_at, "pixel_id": r.destination or PIXEL_ID, "request": {"data": [ev]},
                                 "response": resp}, separators=(",", ":")) + "\n")


def _clicks(sv: pd.DataFrame, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fh.write("Parameters:TimeZone=UTC\n")
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["Google Click ID", "Conversion Name", "Conversion Time", "Conversion Value", "Conversion Currency",
                    "Order ID", "Email", "Phone Number", "Ad User Data", "Sent At", "Shop Order ID", "Upload Status",
                    "City", "Region", "Postal Code", "Country"])
        for r in sv.itertuples():
            t = dt.datetime.fromtimestamp(int(r.event_time), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            aud = getattr(r, "consent_ad_user_data", "") or ""
            w.writerow([r.gclid, r.event_name, t, r.value, r.currency, r.event_id, r.em, r.ph,
                        {"granted": "Granted", "denied": "Denied"}.get(aud, ""), r.sent_at, r.order_id, r.status,
                        r.ct, r.st, r.zp, r.country])


def _meta_ads(rep: pd.DataFrame, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["Day", "Website purchases", "Amount spent (EUR)", "Reporting starts", "Reporting ends"])
        for r in rep.itertuples():
            w.writerow([r.date, r.conversions if float(r.conversions) else "", "100.00", r.date, r.date])


def _google_report(rep: pd.DataFrame, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fh.write("Conversions report\n")
        fh.write("All time\n")
        w = csv.writer(fh, lineterminator="\n")
        # both columns, as Google's UI offers them: `Conversions` dated by the ad click (here 30 % of
        # a day's conversions followed a click the day before) and `Conversions (by conv. time)`
        # dated by the conversion; the loader must pick the latter
        w.writerow(["Day", "Conversion action", "Conversions", "Conversions (by conv. time)", "Conv. value"])
        conv = rep.conversions.astype(float).to_numpy()
        by_click = 0.7 * conv + 0.3 * pd.Series(conv).shift(-1, fill_value=0.0).to_numpy()
        for r, clicked in zip(rep.itertuples(), by_click, strict=True):
            w.writerow([r.date, r.event_name, f"{clicked:,.2f}", f"{float(r.conversions):,.2f}", " --"])
        w.writerow(["Total: Account", "", f"{by_click.sum():,.2f}", f"{rep.conversions.astype(float).sum():,.2f}", " --"])
