"""Charts: one `plot_<view>(frame, *, ax=None)` per view, returning the Axes.

Charts never show or save themselves; the house style is applied inside `house_style()` (a
matplotlib rc context), never by changing global state. Colours are the Okabe-Ito palette
(colour-blind safe). Only aggregates are drawn: no customer value ever reaches a chart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

if TYPE_CHECKING:
    from capi_audit.audit import AuditResult

OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
             "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "grey": "#7F7F7F", "black": "#000000"}
CHANNEL_COLORS = {"both": OKABE_ITO["green"], "pixel_only": OKABE_ITO["blue"], "server_only": OKABE_ITO["orange"],
                  "outside_window_counts": OKABE_ITO["vermillion"], "missing_event_id": OKABE_ITO["purple"]}
STYLE = {
    "figure.figsize": (9, 4.2), "figure.dpi": 100, "savefig.dpi": 120, "font.size": 10,
    "axes.titlesize": 12, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.grid.axis": "y",
    "grid.color": "#DDDDDD", "grid.linewidth": 0.8, "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO.values())),
    "svg.hashsalt": "capi_audit", "svg.fonttype": "none",
}
THOUSANDS = FuncFormatter(lambda x, _: f"{x:,.0f}")


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Apply the house style for the charts drawn inside the block."""
    with plt.rc_context(STYLE):
        yield


def _ax(ax: Axes | None) -> Axes:
    # A standalone Figure, not a pyplot one: drawing a chart touches no global state.
    if ax is not None:
        return ax
    with house_style():
        fig = Figure(figsize=STYLE["figure.figsize"], dpi=STYLE["figure.dpi"])
        return fig.add_subplot()


def _rows(frame: pd.DataFrame, platform: str) -> pd.DataFrame:
    """The frame's rows for one platform (an empty frame stays empty)."""
    return frame[frame["platform"] == platform] if len(frame) else frame


def _dates(ax: Axes, days: pd.Series | None = None) -> None:
    """Date ticks; the year is shown when the days span more than one calendar year."""
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=10))
    crosses = days is not None and len(days) and pd.to_datetime(days).dt.year.nunique() > 1
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y" if crosses else "%d %b"))


def _enable_line(ax: Axes, enabled_at: object) -> None:
    """A labelled vertical line at the CAPI enable time (local day boundary as configured)."""
    if enabled_at is None:
        return
    x = pd.Timestamp(enabled_at)
    x = x.tz_convert("UTC").tz_localize(None) if x.tzinfo else x
    ax.axvline(x, color=OKABE_ITO["black"], ls="--", lw=1, label="CAPI enabled")


def _empty(ax: Axes, title: str) -> Axes:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color=OKABE_ITO["grey"])
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_dedup_daily(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta",
                     event_name: str = "Purchase", enabled_at: object = None) -> Axes:
    """Stacked daily expected count: paired (counted once), pixel only, server only, double
    counts outside the window, events without event_id."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform} · {event_name}: what the platform counts per day"
        f = frame[(frame["platform"] == platform) & (frame["event_name"] == event_name)] if len(frame) else frame
        if not len(f):
            return _empty(ax, title)
        days = pd.to_datetime(f["day"])
        bottom = np.zeros(len(f))
        labels = {"both": "pixel + server (deduplicated)", "pixel_only": "pixel only", "server_only": "server only",
                  "outside_window_counts": "counted twice: outside window", "missing_event_id": "no event_id"}
        for col, label in labels.items():
            vals = f[col].to_numpy(float)
            ax.bar(days, vals, bottom=bottom, width=0.85, color=CHANNEL_COLORS[col], label=label)
            bottom += vals
        if "reported" in f and f["reported"].notna().any():
            ax.plot(days, f["reported"], color=OKABE_ITO["black"], lw=1.5, marker=".", label="platform reported")
        _enable_line(ax, enabled_at)
        ax.set_title(title)
        ax.set_ylabel("conversions per day")
        ax.yaxis.set_major_formatter(THOUSANDS)
        _dates(ax, f["day"])
        ax.legend(ncols=3, fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.12))
        return ax


def plot_dedup_leaks(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta") -> Axes:
    """Waterfall: orders matched, then each cause of extra counts, ending at counted events."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: where deduplication leaks (extra counts by cause)"
        f = _rows(frame, platform)
        if not len(f):
            return _empty(ax, title)
        causes = f.groupby("cause", as_index=False)["extra_counts"].sum().sort_values("cause")
        names = [c.replace("_", " ") for c in causes["cause"]]
        vals = causes["extra_counts"].to_numpy(float)
        start = np.concatenate([[0], np.cumsum(vals)[:-1]])
        bars = ax.bar(names, vals, bottom=start, color=OKABE_ITO["vermillion"])
        ax.bar(["total extra"], [vals.sum()], color=OKABE_ITO["black"])
        for b, v in zip(bars, vals, strict=True):
            ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, b.get_y() + b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.annotate(f"{vals.sum():,.0f}", (len(vals), vals.sum()), ha="center", va="bottom", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("extra counted conversions")
        ax.yaxis.set_major_formatter(THOUSANDS)
        ax.tick_params(axis="x", labelrotation=20)
        return ax


def waterfall_frame(values: dict) -> pd.DataFrame:
    """The four-term identity of one platform/class as a small frame for `plot_waterfall`."""
    from capi_audit.metrics.recovery import waterfall_frame as frame

    return frame(values)


def plot_waterfall(frame: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
                   platform: str | None = None, conv_class: str | None = None) -> Axes:
    """Waterfall: each term of the exact identity stacks on the previous ones and the last bar is
    the reported change per day; whiskers are each term's 95 % week-bootstrap interval (around
    the term's own step; the intervals do not add). A frame with a `platform` column (the
    `recovery_waterfall` frame) is first narrowed to the platform and class."""
    with house_style():
        ax = _ax(ax)
        if platform is not None and len(frame) and "platform" in frame:
            frame = frame[frame["platform"] == platform]
            if len(frame) and "conv_class" in frame:
                cls = conv_class if conv_class in set(frame["conv_class"]) else sorted(frame["conv_class"].unique())[0]
                frame = frame[frame["conv_class"] == cls]
                conv_class = cls
        if title is None:
            title = "The reported change, decomposed" if platform is None else \
                f"{platform} · {conv_class}: the reported change per day, decomposed"
        frame = frame.reset_index(drop=True)
        if not len(frame):
            return _empty(ax, title)
        frame = frame.assign(color=[OKABE_ITO.get(c, c) for c in frame["color"]])
        if not len(frame) or frame["per_day"].isna().all():
            return _empty(ax, title)
        parts, total = frame.iloc[:-1], frame.iloc[-1]
        level = 0.0
        for i, r in enumerate(parts.itertuples()):
            v = 0.0 if pd.isna(r.per_day) else float(r.per_day)
            ax.bar(i, v, bottom=level, color=r.color, edgecolor=OKABE_ITO["black"], lw=0.5)
            if pd.notna(r.ci_low) and pd.notna(r.ci_high):
                ax.errorbar([i], [level + v], yerr=[[v - r.ci_low], [r.ci_high - v]], fmt="none",
                            ecolor=OKABE_ITO["grey"], capsize=4, lw=1.2)
            ax.annotate(f"{v:+.1f}", (i, level + v), ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
            level += v
        n = len(parts)
        tv = 0.0 if pd.isna(total.per_day) else float(total.per_day)
        ax.bar(n, tv, color=total.color)
        if pd.notna(total.ci_low) and pd.notna(total.ci_high):
            ax.errorbar([n], [tv], yerr=[[tv - total.ci_low], [total.ci_high - tv]], fmt="none",
                        ecolor=OKABE_ITO["grey"], capsize=4, lw=1.2)
        ax.annotate(f"{tv:+.1f}", (n, tv), ha="center", va="bottom" if tv >= 0 else "top", fontsize=8)
        ax.set_xticks(range(n + 1), [*parts["label"], total.label], rotation=25, ha="right")
        ax.axhline(0, color=OKABE_ITO["black"], lw=0.8)
        ax.set_title(title)
        ax.set_ylabel("report conversions per day")
        return ax


def plot_capi_daily(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta",
                    conv_class: str | None = None) -> Axes:
    """Post days: L (units counted from all logs) over P (the pixel alone); the gap between them,
    what the server added, is shaded as recovered and double counted (frame `capi_effect`)."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: counted with the server (L) vs by the pixel alone (P)"
        f = _rows(frame, platform)
        if len(f) and conv_class is not None:
            f = f[f["conv_class"] == conv_class]
        elif len(f):
            f = f[f["conv_class"] == sorted(f["conv_class"].unique())[0]]
        if not len(f):
            return _empty(ax, title)
        days = pd.to_datetime(f["day"])
        p, rec = f["P"].to_numpy(float), f["recovered"].to_numpy(float)
        rest = f["L"].to_numpy(float) - p - rec
        ax.fill_between(days, p, p + rec, color=OKABE_ITO["green"], alpha=0.45, step="mid", label="recovered")
        ax.fill_between(days, p + rec, p + rec + rest, color=OKABE_ITO["vermillion"], alpha=0.45, step="mid",
                        label="double counted / unlinked")
        ax.step(days, f["L"], where="mid", color=OKABE_ITO["black"], lw=1.2, label="L: with server")
        ax.step(days, p, where="mid", color=OKABE_ITO["blue"], lw=1.2, label="P: pixel alone")
        ax.set_title(title)
        ax.set_ylabel("counted units per day")
        ax.yaxis.set_major_formatter(THOUSANDS)
        _dates(ax)
        ax.legend(fontsize=8)
        return ax


def plot_bridge(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta",
                conv_class: str | None = None) -> Axes:
    """ρ (report ÷ log units) and π (pixel units ÷ real orders) per settled day, with the
    enable day marked and the compared whole weeks shaded (frame `recovery`)."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: report-to-log ratio ρ and pixel capture π"
        f = _rows(frame, platform)
        if len(f) and conv_class is not None:
            f = f[f["conv_class"] == conv_class]
        elif len(f):
            f = f[f["conv_class"] == sorted(f["conv_class"].unique())[0]]
        if not len(f) or "rho" not in f:
            return _empty(ax, title)
        f = f.assign(day=pd.to_datetime(f["day"])).set_index("day")
        full = f.reindex(pd.date_range(f.index.min(), f.index.max(), freq="D"))  # burn-in days break the line
        ax.plot(full.index, full["rho"], color=OKABE_ITO["orange"], marker=".", lw=1, label="ρ = R ÷ L")
        ax.plot(full.index, full["pi"], color=OKABE_ITO["blue"], marker=".", lw=1, label="π = P ÷ O")
        for period in ("pre", "post"):
            g = f[f["period"] == period]
            if len(g):
                ax.axvspan(g.index.min(), g.index.max(), color=OKABE_ITO["grey"], alpha=0.08)
        pre = f[f["period"].str.startswith("pre")]
        if len(pre):
            ax.axvline(pre.index.max() + pd.Timedelta(days=1), color=OKABE_ITO["black"], ls="--", lw=1,
                       label="CAPI enabled")
        ax.set_title(title)
        ax.set_ylabel("ratio")
        _dates(ax)
        ax.legend(fontsize=8)
        return ax


def plot_match_keys_heatmap(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta") -> Axes:
    """Heat map of the valid share of each key by day."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: valid match keys by day"
        f = _rows(frame, platform)
        if not len(f):
            return _empty(ax, title)
        wide = f.pivot(index="key", columns="day", values="valid_share")
        wide = wide[(wide.fillna(0) > 0).any(axis=1)]
        if not len(wide):
            return _empty(ax, title)
        im = ax.imshow(wide.to_numpy(float), aspect="auto", cmap="cividis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(wide.index)), list(wide.index), fontsize=8)
        cols = [pd.Timestamp(c).strftime("%d %b") for c in wide.columns]
        step = max(1, len(cols) // 8)
        ax.set_xticks(range(0, len(cols), step), cols[::step], fontsize=8)
        ax.grid(False)
        ax.figure.colorbar(im, ax=ax, format=PercentFormatter(1.0), label="valid share of events")
        ax.set_title(title)
        return ax


def plot_identifier_tiers(frame: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Horizontal stacked bars: share of server events by best identifier tier, per platform."""
    with house_style():
        ax = _ax(ax)
        title = "Best identifier on each server event"
        if not len(frame):
            return _empty(ax, title)
        tiers = ["strong", "click", "browser", "none"]
        colors = [OKABE_ITO["green"], OKABE_ITO["sky"], OKABE_ITO["orange"], OKABE_ITO["vermillion"]]
        plats = sorted(frame["platform"].unique())
        left = np.zeros(len(plats))
        for tier, color in zip(tiers, colors, strict=True):
            vals = np.array([frame[(frame["platform"] == p) & (frame["tier"] == tier)]["events"].sum()
                             / frame[frame["platform"] == p]["events"].sum() for p in plats])
            ax.barh(plats, vals, left=left, color=color, label=tier)
            left += vals
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlim(0, 1)
        ax.grid(axis="x")
        ax.set_title(title)
        ax.legend(ncols=4, fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.12))
        return ax


def plot_consent_funnel(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta") -> Axes:
    """Funnel over orders created after enablement: orders, consent granted, granted with a
    pixel event, granted with a server event."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: consent funnel (orders after CAPI enablement)"
        f = _rows(frame, platform)
        if not len(f):
            return _empty(ax, title)
        s = f[["orders_post", "granted_post", "granted_post_pixel", "granted_post_server"]].sum()
        labels = ["orders", "ads consent granted", "… with a pixel event", "… with a server event"]
        bars = ax.bar(labels, s.to_numpy(float), color=[OKABE_ITO["grey"], OKABE_ITO["blue"], OKABE_ITO["sky"],
                                                        OKABE_ITO["orange"]])
        for b, v in zip(bars, s.to_numpy(float), strict=True):
            ax.annotate(f"{v:,.0f} ({v / max(s['orders_post'], 1):.0%})", (b.get_x() + b.get_width() / 2, v), ha="center",
                        va="bottom", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("orders")
        ax.yaxis.set_major_formatter(THOUSANDS)
        return ax


def plot_consent_violations(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta") -> Axes:
    """Orders with denied consent that were still sent, by country (from `consent.by_country`)."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: sent despite denied ads consent, by country"
        f = _rows(frame, platform)
        if not len(f):
            return _empty(ax, title)
        f = f.sort_values("country")
        x = np.arange(len(f))
        ax.bar(x - 0.2, f["pixel_fired_without_consent"], 0.4, color=OKABE_ITO["blue"], label="pixel fired")
        ax.bar(x + 0.2, f["server_sent_without_consent"], 0.4, color=OKABE_ITO["vermillion"],
               label="server sent (no LDU)")
        ax.set_xticks(x, [str(c) for c in f["country"]])
        ax.set_ylabel("orders")
        ax.set_title(title)
        ax.legend(fontsize=8)
        return ax


def plot_latency(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta",
                 age_limit_s: float | None = 7 * 86400, window_h: float | None = 48) -> Axes:
    """Histogram of send latency (log scale) with 1 h, 24 h, 48 h and the age limit marked."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: server send latency (sent_at − event_time)"
        if len(frame) and "platform" in frame:
            frame = frame[frame["platform"] == platform]
        if not len(frame):
            return _empty(ax, title)
        edges = 10 ** frame["log10_s"].to_numpy(float)
        ax.bar(edges, frame["events"], width=edges * (10 ** 0.05 - 1), align="edge", color=OKABE_ITO["blue"])
        ax.set_xscale("log")
        marks = [(3600, "1 h"), (86400, "24 h")]
        if window_h:
            marks.append((window_h * 3600, f"{window_h:g} h dedup window"))
        if age_limit_s:
            marks.append((age_limit_s, f"{age_limit_s / 86400:g} d age limit"))
        for x, label in marks:
            ax.axvline(x, color=OKABE_ITO["vermillion"] if "limit" in label else OKABE_ITO["grey"], ls="--", lw=1)
            ax.annotate(label, (x, ax.get_ylim()[1] * 0.95), rotation=90, va="top", ha="right", fontsize=8)
        ax.set_xlabel("seconds (log scale)")
        ax.set_ylabel("server events")
        ax.set_title(title)
        return ax


def plot_payload_rules(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "meta") -> Axes:
    """Server events breaking each platform rule."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: payload rule violations"
        f = _rows(frame, platform)
        if not len(f):
            return _empty(ax, title)
        from capi_audit.metrics.validation import RULES
        # only the platform's own rules (the others are NA in the frame, not 0)
        counts = f[[r for r in RULES if r in f and f[r].notna().any()]].sum().astype(float).sort_values()
        ax.barh([r.replace("_", " ") for r in counts.index], counts.to_numpy(float), color=OKABE_ITO["vermillion"])
        for i, v in enumerate(counts.to_numpy(float)):
            ax.annotate(f"{v:,.0f}", (v, i), va="center", ha="left", fontsize=8, xytext=(3, 0), textcoords="offset points")
        ax.set_xlabel("server events")
        ax.grid(axis="x")
        ax.set_title(title)
        return ax


def plot_consent_by_type(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "google") -> Axes:
    """Denied share of each consent type, kept apart (ad storage vs ad_user_data), with the number
    of orders each share is over (from the `consent` frame)."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: denied share by consent type"
        f = _rows(frame, platform)
        if not len(f) or "known_ad_user_data" not in f:
            return _empty(ax, title)
        s = f[["denied", "known", "denied_ad_user_data", "known_ad_user_data"]].sum()
        types = [("ad_storage", s["denied"], s["known"]), ("ad_user_data", s["denied_ad_user_data"], s["known_ad_user_data"])]
        shares = [d / n if n else 0.0 for _, d, n in types]
        bars = ax.bar([t for t, _, _ in types], shares, color=[OKABE_ITO["blue"], OKABE_ITO["purple"]])
        for bar, (_, d, n) in zip(bars, types, strict=True):
            label = f"{int(d):,} of {int(n):,}" if n else "not recorded"
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=8, xytext=(0, 3), textcoords="offset points")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("denied share of orders with a recorded state")
        ax.set_title(title)
        return ax


def plot_google_enhancements(frame: pd.DataFrame, *, ax: Axes | None = None, platform: str = "google") -> Axes:
    """Google Ads tag conversions per day and how many were enhanced within 24 h or later
    (from the `google_enhancements` frame)."""
    with house_style():
        ax = _ax(ax)
        title = f"{platform}: tag conversions enhanced (enhanced conversions for web)"
        if "platform" in frame:
            frame = _rows(frame, platform)
        if not len(frame):
            return _empty(ax, title)
        d = frame.groupby("day", sort=True)[["tag_conversions", "enhanced_24h", "enhanced_late"]].sum()
        x = pd.to_datetime(d.index)
        ax.bar(x, d["enhanced_24h"], color=OKABE_ITO["green"], label="enhanced within 24 h")
        ax.bar(x, d["enhanced_late"], bottom=d["enhanced_24h"], color=OKABE_ITO["orange"], label="enhanced later")
        ax.plot(x, d["tag_conversions"], color=OKABE_ITO["black"], lw=1.2, label="tag conversions")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.yaxis.set_major_formatter(THOUSANDS)
        ax.set_ylabel("conversions")
        ax.set_title(title)
        ax.legend(fontsize=8)
        return ax


def png_bytes(ax: Axes) -> bytes:
    """The Axes' figure rendered as PNG (for notebooks and reports)."""
    import io

    buf = io.BytesIO()
    with house_style():
        ax.figure.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def save(ax: Axes, folder: Path, name: str) -> list[Path]:
    """Save the Axes' figure as PNG and SVG (deterministic metadata) and close it."""
    folder.mkdir(parents=True, exist_ok=True)
    fig = ax.figure
    fig.tight_layout()
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    with house_style():
        fig.savefig(paths[0], metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def chart_list(result: AuditResult, family: str | None = None) -> list[tuple[str, str, object]]:
    """(file name, caption, draw) for every chart that applies to the result, in registry order.

    Charts come from the family registry (`metrics.FAMILIES`); a per-platform chart is listed only
    for platforms with rows in its frame (a figure that does not apply is omitted, not drawn
    empty). `draw()` returns the Axes.
    """
    from capi_audit.metrics import FAMILIES

    out: list[tuple[str, str, object]] = []
    for fam in FAMILIES:
        if family is not None and fam.name != family:
            continue
        if result.summary.get(fam.name, {}).get("available", True) is False:
            continue
        for chart in fam.charts:
            frame = result.frames.get(chart.frame)
            if frame is None or not len(frame):
                continue
            plot = globals()[f"plot_{chart.view}"]
            if not chart.per_platform:
                opts = chart.options(result, None) if chart.options else {}
                out.append((chart.view, chart.caption, _drawer(plot, frame, opts)))
                continue
            plats = sorted(str(p) for p in frame["platform"].dropna().unique()) if "platform" in frame else []
            if chart.platforms is not None:
                plats = [p for p in plats if p in chart.platforms]
            for p in plats:
                opts = {"platform": p, **(chart.options(result, p) if chart.options else {})}
                if chart.view in ("dedup_daily", "capture_rate"):
                    opts.setdefault("enabled_at", _local_enable(result, p))
                out.append((f"{p}_{chart.view}", f"{_PLATFORM_NAMES.get(p, p)}: {chart.caption}",
                            _drawer(plot, frame, opts)))
    return out


_PLATFORM_NAMES = {"meta": "Meta", "google": "Google", "ga4": "GA4"}


def _local_enable(result: AuditResult, platform: str) -> pd.Timestamp | None:
    """The enable time as a naive local time (the charts' day axis is in the audit's zone)."""
    iso = result.config.enabled_at.get(platform)
    if not iso:
        return None
    return pd.Timestamp(iso).tz_convert(result.config.timezone).tz_localize(None)


def _drawer(plot: object, frame: pd.DataFrame, opts: dict) -> object:
    return lambda: plot(frame, **opts)  # type: ignore[operator]


def all_charts(result: AuditResult) -> list[tuple[str, Axes]]:
    """Every chart for an audit result, named, drawn."""
    return [(name, draw()) for name, _, draw in chart_list(result)]  # type: ignore[operator]


def write_charts(result: AuditResult, folder: Path) -> list[Path]:
    """Draw and save every chart (PNG and SVG) into folder."""
    paths: list[Path] = []
    for name, ax in all_charts(result):
        paths += save(ax, Path(folder), name)
    return paths


# -- defence in depth: no personal data in a label --------------------------------------------
def _refuse_personal_labels(plot: str, frame: object) -> None:
    """Raise when a text column (or the index) of a chart's frame holds a value shaped like an
    email address or a phone number: it would become a tick label or legend entry. Loading
    refuses such category columns already; this catches frames built another way."""
    from capi_audit.errors import InputError
    from capi_audit.parsing import looks_personal

    if not isinstance(frame, pd.DataFrame):
        return
    cols = [(str(c), frame[c]) for c in frame.columns
            if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)]
    if frame.index.dtype == object:
        cols.append((str(frame.index.name or "index"), frame.index.to_series()))
    for name, values in cols:
        n = sum(1 for v in pd.unique(values.dropna()) if isinstance(v, str) and looks_personal(v))
        if n:
            raise InputError(
                f"{plot}: column {name!r} holds {n} distinct values shaped like email addresses or phone numbers; "
                f"a chart label must not be personal data: the source column mapped to {name} is probably "
                "mis-mapped (check `columns` in audit.toml)")


def _guarded(plot: object) -> object:
    import functools

    @functools.wraps(plot)  # type: ignore[arg-type]
    def draw(frame: object = None, *args: object, **kwargs: object) -> object:
        _refuse_personal_labels(plot.__name__, frame if frame is not None else kwargs.get("frame"))  # type: ignore[attr-defined]
        return plot(frame, *args, **kwargs)  # type: ignore[operator]

    return draw


for _name in [n for n in list(globals()) if n.startswith("plot_")]:
    globals()[_name] = _guarded(globals()[_name])
del _name
