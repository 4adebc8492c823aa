"""Calibration of the §3.3–§3.4 intervals and p-values on simulated days with known effects.

Each replication simulates daily series the way an audit sees them — real orders O (weekday
pattern, day-level overdispersion, optional growth), pixel-counted units P ~ Binomial(O, π_t)
(optional drift and weekday pattern in π), server-added units after enablement (recovered:
Binomial(O − P, s); double counts: Poisson(d·O)), L = P + added, and the attributed report
R ~ Binomial(L, ρ) with ρ changing at enablement when planted — then runs the product's own
statistics (metrics.recovery.decompose, stats.orders_change, recovery.placebo,
stats.day_block_interval) and records whether each 95 % interval holds the true value (the term
evaluated at the model's expected daily means over the same days) and whether each 5 % test
rejects a true null.

    python benchmarks/calibration.py --reps 600 --out benchmarks/calibration.json

Not part of the default test run (tests/test_calibration.py runs a small smoke version, marked slow).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from capi_audit import stats
from capi_audit.metrics.recovery import decompose, placebo, terms

WEEKDAY_O = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 0.75])
TERMS = ("reported_change_per_day", "capi_reported_per_day", "net_new_per_day", "pixel_capture_change_per_day",
         "attribution_change_per_day")


@dataclass(frozen=True)
class Scenario:
    name: str
    weeks: int = 4             # whole weeks compared on each side
    pre_weeks: int = 12        # pre-period simulated (placebos live here)
    orders: float = 60.0
    cv: float = 0.0            # day-level gamma CV on the order rate
    growth: float = 0.0        # real change in orders after enablement
    pi: float = 0.70
    drift: float = 0.0         # π changes by this much (absolute) from the first to the last day
    weekend_pi: float | None = None  # π on Saturday and Sunday (weekday mix)
    recover: float = 0.0       # share of pixel-lost orders the server recovers
    double: float = 0.0        # server double counts per order
    rho_pre: float = 0.6
    rho_post: float = 0.6


SCENARIOS = [
    Scenario("no_effect_poisson"),
    Scenario("no_effect_overdispersed", cv=0.20),
    Scenario("slow_drift_no_capi", cv=0.10, drift=-0.10),
    Scenario("weekday_mix_no_capi", cv=0.10, weekend_pi=0.55),
    Scenario("capi_effect_and_growth", cv=0.15, growth=0.10, recover=0.5, double=0.05, rho_post=0.66),
]


def _means(sc: Scenario) -> dict[str, np.ndarray]:
    """Expected daily values over the simulated days (pre then post)."""
    n_pre, n_post = 7 * sc.pre_weeks, 7 * sc.weeks
    t = np.arange(n_pre + n_post)
    post = t >= n_pre
    wd = t % 7
    mu_o = sc.orders * WEEKDAY_O[wd] * np.where(post, 1 + sc.growth, 1.0)
    pi = np.full(len(t), sc.pi)
    if sc.weekend_pi is not None:
        pi = np.where(wd >= 5, sc.weekend_pi, pi)
    pi = pi + sc.drift * t / (len(t) - 1)
    rec = np.where(post, mu_o * (1 - pi) * sc.recover, 0.0)
    dbl = np.where(post, mu_o * sc.double, 0.0)
    p = mu_o * pi
    lo = p + rec + dbl
    rho = np.where(post, sc.rho_post, sc.rho_pre)
    return {"O": mu_o, "P": p, "L": lo, "R": rho * lo, "recovered": rec, "server_double_counted": dbl,
            "unlinked_added": np.zeros(len(t)), "pi": pi, "rho": rho, "post": post}


def simulate(sc: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One replication's daily series."""
    m = _means(sc)
    lam = m["O"] * (rng.gamma(1 / sc.cv**2, sc.cv**2, len(m["O"])) if sc.cv > 0 else 1.0)
    o = rng.poisson(lam)
    p = rng.binomial(o, np.clip(m["pi"], 0, 1))
    rec = np.where(m["post"], rng.binomial(o - p, sc.recover), 0)
    dbl = np.where(m["post"], rng.poisson(sc.double * o), 0)
    lo = p + rec + dbl
    r = rng.binomial(lo, m["rho"])
    return {"O": o.astype(float), "P": p.astype(float), "L": lo.astype(float), "R": r.astype(float),
            "recovered": rec.astype(float), "server_double_counted": dbl.astype(float),
            "unlinked_added": np.zeros(len(o)), "post": m["post"]}


def _split(d: dict[str, np.ndarray], sc: Scenario) -> tuple[dict, dict]:
    n_pre = 7 * sc.pre_weeks
    k = 7 * sc.weeks
    cols = ("R", "L", "P", "O", "recovered", "server_double_counted", "unlinked_added")
    pre = {c: np.asarray(d[c][n_pre - k:n_pre], float) for c in cols}
    post = {c: np.asarray(d[c][n_pre:n_pre + k], float) for c in cols}
    return pre, post


def truth(sc: Scenario) -> dict[str, float]:
    """True terms: the decomposition at the expected daily means of the compared days."""
    pre, post = _split(_means(sc), sc)
    t = terms({k: v[None] for k, v in pre.items()}, {k: v[None] for k, v in post.items()})
    out = {k: float(t[k][0]) for k in TERMS}
    out["orders_change_per_day"] = float(post["O"].mean() - pre["O"].mean())
    added = post["L"] - post["P"]
    out["capi_added_per_day"] = float(added.mean())
    out["acr_like"] = float(added.sum() / post["P"].sum())
    return out


def one(sc: Scenario, rng: np.random.Generator, reps: int) -> dict[str, object]:
    d = simulate(sc, rng)
    pre, post = _split(d, sc)
    dec = decompose(pre, post, reps=reps)
    wd = np.r_[np.arange(len(pre["O"])) % 7, np.arange(len(post["O"])) % 7]
    oc = stats.orders_change(np.r_[pre["O"], post["O"]], wd, np.r_[np.zeros(len(pre["O"])), np.ones(len(post["O"]))])
    n_pre = 7 * sc.pre_weeks
    pl = placebo(d["R"][:n_pre], post["R"], sc.weeks)
    added = post["L"] - post["P"]
    ci_added = stats.day_block_interval({"x": added}, lambda c: c["x"].mean(axis=-1), reps=reps)

    def ratio(c: dict[str, np.ndarray]) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return c["a"].sum(axis=-1) / c["p"].sum(axis=-1)
    ci_acr = stats.day_block_interval({"a": added, "p": post["P"]}, ratio, reps=reps)
    cis = {k: dec[f"{k}_ci"] for k in TERMS}
    cis["orders_change_per_day"] = oc["ci"]
    cis["capi_added_per_day"] = ci_added
    cis["acr_like"] = ci_acr
    return {"ci": cis, "p": {"orders_change_p_value": oc["p_value"], "placebo_p_value": pl["placebo_p_value"]}}


def run(scenarios: list[Scenario], reps: int, boot: int, seed: int = 1) -> dict[str, object]:
    out: dict[str, object] = {}
    for i, sc in enumerate(scenarios):
        rng = np.random.default_rng([seed, i])
        tr = truth(sc)
        cover: dict[str, list[bool]] = {k: [] for k in tr}
        rejects: dict[str, list[bool]] = {"orders_change_p_value": [], "placebo_p_value": []}
        for _ in range(reps):
            r = one(sc, rng, boot)
            for k, (lo, hi) in r["ci"].items():
                if lo is not None and hi is not None:
                    # a term that is exactly 0 by construction (no server) is covered when the
                    # interval is the point [0, 0]
                    cover[k].append(lo - 1e-9 <= tr[k] <= hi + 1e-9)
            if sc.growth == 0 and r["p"]["orders_change_p_value"] is not None:
                rejects["orders_change_p_value"].append(r["p"]["orders_change_p_value"] < 0.05)
            no_report_change = abs(tr["reported_change_per_day"]) < 1e-12
            if no_report_change and r["p"]["placebo_p_value"] is not None:
                rejects["placebo_p_value"].append(r["p"]["placebo_p_value"] < 0.05)

        def rate(xs: list[bool]) -> dict[str, float] | None:
            if not xs:
                return None
            p = float(np.mean(xs))
            return {"rate": round(p, 4), "mc_se": round(math.sqrt(p * (1 - p) / len(xs)), 4), "n": len(xs)}
        out[f"{sc.name}_w{sc.weeks}"] = {
            "scenario": asdict(sc), "truth": tr,
            "coverage": {k: rate(v) for k, v in cover.items()},
            "false_positive_rate": {k: rate(v) for k, v in rejects.items()},
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=600, help="replications per scenario")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples per interval")
    ap.add_argument("--weeks", type=int, nargs="+", default=[4, 8], help="whole weeks compared per side")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    scenarios = [replace(sc, weeks=w) for w in a.weeks for sc in SCENARIOS]
    t0 = time.time()
    res = run(scenarios, a.reps, a.boot)
    res["_meta"] = {"reps": a.reps, "boot": a.boot, "seconds": round(time.time() - t0, 1)}
    text = json.dumps(res, indent=2, sort_keys=True)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    for name, v in res.items():
        if name.startswith("_"):
            continue
        cov = ", ".join(f"{k} {c['rate']:.3f}" for k, c in v["coverage"].items() if c)
        fp = ", ".join(f"{k} {c['rate']:.3f}" for k, c in v["false_positive_rate"].items() if c)
        print(f"{name}: coverage {cov}; false positives {fp}")
    print(f"{res['_meta']['seconds']} s")


if __name__ == "__main__":
    main()
