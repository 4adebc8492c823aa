"""Write the curated notebooks (cells only); `make notebooks` then executes them in place."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parents[1] / "notebooks"
PARAMS = ('# Parameters: papermill replaces these (capi-audit report passes your audit.toml).\n'
          'config = "../data_fixtures/scenario_main/audit.toml"\n'
          'output_dir = None')
SETUP = ("from capi_audit import charts, notebook as nb\n"
         "result = nb.audit(config)")


def md(text: str) -> nbf.NotebookNode:
    return nbf.v4.new_markdown_cell(text.strip())


def code(text: str, *, ignore: bool = False) -> nbf.NotebookNode:
    return nbf.v4.new_code_cell(("# NBVAL_IGNORE_OUTPUT\n" if ignore else "") + text.strip())


def notebook(title: str, intro: str, cells: list) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    params = code(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [md(f"# {title}\n\n{intro}"), params, code(SETUP), *cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def chart(call: str) -> nbf.NotebookNode:
    # figures are compared by nbval only through their text; the numbers they show are stated
    # in the tables, which are compared exactly
    return code("nb.show(" + call + ")")


BOOKS = {
    "01_overview": notebook(
        "Overview: what was loaded, and the headline",
        "Run this first after switching on a server-side Conversions API. It checks that every input row "
        "was loaded or rejected (with a reason), then states how the change in reported conversions splits.",
        [
            md("## Load report\nEvery row is either loaded or rejected: `rows_read = rows_loaded + rows_rejected`. "
               "If anything was rejected, the next table says which column and why (values are never shown). "
               "Fix the export or map the column in `audit.toml` before trusting the numbers below."),
            code("nb.load_table(result)"),
            code("nb.rejects_table(result)"),
            md("## Headline\nOf the change in reported conversions per day after enablement, how much is browser loss "
               "the server recovered, how much is double counting, and how much is real new sales. A p-value above "
               "0.05 means real daily sales did not change detectably."),
            code("nb.headline(result)"),
            md("## Key figures\nDeduplication for the conversion event, and double counting per platform. "
               "`event_coverage` is the share of pixel events the server also sent (Meta's goal: 75%); "
               "`dedup_rate` the share of server events that paired with a pixel event."),
            code('nb.table(result, "dedup", event_name="Purchase")'),
            code('nb.table(result, "double_counting")'),
            code('[n for n in result.summary["notes"]]'),
        ]),
    "02_dedup": notebook(
        "Deduplication: where pixel and server pair, and where they leak",
        "The platform counts a pixel hit and a server event once only when they share event_name and event_id "
        "and arrive within the window (Meta: 48 h from the first receipt; Google: unbounded). "
        "Everything else is counted twice or not paired.",
        [
            md("## Overlap after enablement\nRead `both` as healthy pairs. `both_outside_window` are pairs the "
               "platform counts twice because the server sent too late; `name_mismatch` are ids sent under "
               "different event names (e.g. `Purchase` vs `purchase`); `missing_event_id_*` cannot be paired at "
               "all. `report_gap` compares what the platform reported with what it should count from these logs."),
            code('nb.table(result, "dedup", event_name="Purchase")'),
            md("## What the platform counts per day\nGreen is deduplicated pairs. Orange (server only) after enablement "
               "is what CAPI adds: recovered orders, or double counts when the ids do not match. Red and purple are "
               "counted twice or without an id. The black line is what the platform reported."),
            chart('charts.plot_dedup_daily(result.frames["dedup_daily"], platform="meta")'),
            chart('charts.plot_dedup_daily(result.frames["dedup_daily"], platform="google")'),
            md("## Extra counts by cause\nEach order counted more than once, attributed to a cause. Fix the largest "
               "bar first: `id_mismatch` means the server does not reuse the browser's eventID; "
               "`server_retry_new_id` means retries mint a new id; `outside_window` means sends are queued too long."),
            code('nb.table(result, "double_counting")'),
            chart('charts.plot_dedup_leaks(result.frames["double_counting"], platform="meta")'),
            chart('charts.plot_dedup_leaks(result.frames["double_counting"], platform="google")'),
            md("## Send latency\nThe dedup window counts from receipt. Sends later than 48 h double count on Meta; "
               "sends older than 7 days are rejected."),
            code('nb.table(result, "latency")'),
            chart('charts.plot_latency(result.frames["latency_bins"]["meta"], platform="meta")'),
        ]),
    "03_recovered_vs_net_new": notebook(
        "The CAPI effect, and how the change in reported conversions splits",
        "The pixel keeps running after enablement, so what the platform would have counted without the server "
        "is observable on the same days and orders. This notebook shows what the server added (recovered orders, "
        "double counts), then splits the change in the platform's report exactly into what CAPI added, real "
        "orders moving, pixel capture changing and the report counting a different share.",
        [
            md("## What the server added (post days)\nL counts units the platform counts from all logs, P the "
               "units it would count from the pixel alone (same rules). `capi_added_per_day = mean(L − P)` splits "
               "exactly into recovered, server double counted and unlinked. Intervals: sampling noise of a per-day "
               "mean only (7-day block bootstrap)."),
            code('nb.table(result, "capi_effect", event_name="Purchase")'),
            chart('charts.plot_capi_daily(result.frames["capi_effect"], platform="meta", conv_class="Purchase")'),
            md("## The reported change, decomposed\nWhole weeks before and after, burn-in and settle days left "
               "out: `reported_change = capi_reported + net_new + pixel_capture_change + attribution_change`, "
               "exactly. Intervals resample whole weeks; they do not cover trends or anything that changed with "
               "the rollout (see docs/holdout.md)."),
            code('nb.table(result, "recovery", event_name="Purchase")'),
            code("nb.headline(result)"),
            chart('charts.plot_waterfall(charts.waterfall_frame(result.summary["recovery"]["meta"]["Purchase"]), '
                  'title="meta: the reported change, decomposed")'),
            md("## Report bridge\nρ = report ÷ log units (attribution, modelling, matching); π = pixel units ÷ "
               "real orders. A jump in ρ at enablement means the report counts a different share."),
            chart('charts.plot_bridge(result.frames["recovery"], platform="meta", conv_class="Purchase")'),
            chart('charts.plot_bridge(result.frames["recovery"], platform="google", conv_class="Purchase")'),
        ]),
    "04_match_keys": notebook(
        "Match keys: coverage, validity and plaintext leaks",
        "How well can the platform match your server events to people? Keys must be present and valid "
        "(hashed keys: 64 lowercase hex, never the hash of an empty string; fbc/fbp in Meta's format; a public "
        "client IP; a browser user agent). Plaintext personal data found in the logs is counted, never shown.",
        [
            md("## Meta keys\n`present` and `valid` are shares of all Meta server events. A gap between them is a "
               "bug to fix at the sender; `plaintext_pii` above zero is a privacy incident; `shared_value` is the "
               "share of events carrying a value seen on an implausible share of events (the server's own IP, a "
               "constant hash)."),
            code('nb.match_key_table(result, "meta")'),
            chart('charts.plot_match_keys_heatmap(result.frames["match_keys_daily"], platform="meta")'),
            md("## Google keys"),
            code('nb.match_key_table(result, "google")'),
            md("## Best identifier per event\n`strong`: a valid hashed email or phone; `click`: a valid fbc or gclid; "
               "`browser`: fbp with a public IP and a browser user agent; `none`: nothing usable."),
            chart('charts.plot_identifier_tiers(result.frames["tiers"])'),
        ]),
    "05_consent": notebook(
        "Consent: what denial removes, and sends that should not happen",
        "Orders carry the ads-consent state recorded at checkout. Denied orders should reach neither channel "
        "(unless flagged for restricted processing such as Meta's LDU); granted orders lost by the browser are "
        "what the server channel can legitimately recover.",
        [
            md("## Rates and violations\n`denied_rate`: denied ÷ orders with known consent. `consent_drop_rate`: "
               "denied orders without a pixel event ÷ known. `browser_loss_rate`: granted orders without a pixel "
               "event ÷ granted. `server_gap_rate`: granted orders after enablement the server did not send. "
               "Violations are order counts: any value above zero needs a fix in the tag or the server."),
            code('nb.table(result, "consent")'),
            chart('charts.plot_consent_funnel(result.frames["consent"], platform="meta")'),
            md("## By country"),
            code("nb.consent_by_country(result)"),
            chart('charts.plot_consent_violations(result.frames["consent_by_country"], platform="meta")'),
        ]),
    "06_payload_validity": notebook(
        "Payload validity: what the platform would reject or degrade",
        "Each server event checked against the platform's documented rules. Rejected events never count; "
        "degraded ones match worse. Counts include events the platform already rejected.",
        [
            md("## Rule violations per platform\n`event_too_old`: sent more than 7 days after the event (Meta rejects "
               "the whole request). `insufficient_customer_keys`: only key combinations Meta rejects (e.g. city + "
               "country + user agent). `unhashed_key`: plaintext where a hash was due. `click_id_too_old`: fbc older "
               "than 90 days."),
            code('nb.table(result, "validation")'),
            chart('charts.plot_payload_rules(result.frames["validation"], platform="meta")'),
            chart('charts.plot_payload_rules(result.frames["validation"], platform="google")'),
        ]),
}


def main() -> None:
    """Write every notebook (without outputs)."""
    for name, nb in BOOKS.items():
        nbf.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
