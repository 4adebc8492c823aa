"""Planted id-level linkage behaviours (Meta), each a per-order label with its truth written out
from the labels (synth/linkage.py and synth/effect_truth.py read them; nothing calls the metrics):

- `eid_only`: the pixel carries the order only as eid — `fbq('track','Purchase',{...},{eventID})`
  without `cd[order_id]`: the pixel rows are written with no order_id; they link to their order
  through the event_id (`order_key = "auto"`). Nothing else changes.
- `subscribe`: a legitimate second event on the order, `Subscribe` next to `Purchase`, on both
  channels with the order id as eid, perfectly paired (a copy of the order's first server row, same
  request). Not double counting: the order is also "under another name".
- `merged` / `merged_into`: two orders share one id — the second order of a pair (on the same day,
  both clean and paired) sends the first order's id on both channels. The platform counts one unit
  for the pair, the first order's; the second order is merged away (an `event_id_collision`), its
  rows are same-channel duplicates.
- `second_dataset`: the hit is also sent to a second Meta dataset (a legacy pixel still on the
  thank-you page), same eid: each dataset counts the purchase (design §3.0), so the order is counted
  twice by the pixel alone — pre-existing double counting of cause `other_destination`. All Meta
  rows carry their dataset id (destination), so the dataset is part of the dedup key.
- `sentinel` / `sentinel_owner`: on one post day (a broken release), a few orders' pixel hits send
  the eid `undefined` while the server sends the order id. The platform counts one pixel unit for
  all of them (key = 'undefined'), owned by the earliest hit's order; every server unit stays
  unpaired (these orders carry no fbp, so Method B cannot pair them either).
"""

from __future__ import annotations

from typing import Any

import numpy as np

STREAM = 4242  # this module's own random stream
SENTINEL_ID = "undefined"
# Meta dataset (pixel) ids: every Meta row goes to the main dataset; a legacy pixel left on the
# thank-you page sends some hits to a second one
DATASET = "1111111111111111"
SECOND_DATASET = "2222222222222222"


def plant(params: Any, o: Any, platform: str, pi: int, enable: int, defect: np.ndarray, fired: np.ndarray,
          sent: np.ndarray, reload: np.ndarray, keys: dict, flags: dict) -> dict[str, np.ndarray]:
    """Per-order labels of the id-level plants for one platform and day (all False off Meta)."""
    from capi_audit.synth.generate import D

    n = len(defect)
    z = np.zeros(n, bool)
    out = {"eid_only": z.copy(), "subscribe": z.copy(), "merged": z.copy(), "merged_into": np.full(n, -1),
           "sentinel": z.copy(), "sentinel_owner": z.copy(), "second_dataset": z.copy()}
    if platform != "meta" or n == 0:
        return out
    rng = np.random.default_rng([params.seed, o.day, STREAM, pi])
    u1, u2, u3, u4 = rng.random(n), rng.random(n), rng.random(n), rng.random(n)
    nt = ~o.is_test
    bad_send = flags["collateral"] | flags["old_unlogged"]
    clean = (nt & fired & sent & (defect == D["none"]) & ~reload & ~bad_send & ~flags["reload_no_eid"]
             & ~flags["value_missing"] & ~flags["currency_missing"] & ~flags["currency_invalid"])
    post = o.t0 >= enable
    # a sentinel day: the first few clean post orders without fbp
    day = params.enable_day.get("meta")
    if day is not None and params.sentinel_orders and o.day == day + params.sentinel_day_offset:
        cand = np.flatnonzero(clean & post & (keys["fbp"] == ""))[: params.sentinel_orders]
        if len(cand) >= 2:
            out["sentinel"][cand] = True
    taken = out["sentinel"].copy()
    # pairs of consecutive clean post orders sharing one id
    cand = [i for i in np.flatnonzero(clean & post & ~taken)]
    k = 0
    while k + 1 < len(cand):
        i, j = cand[k], cand[k + 1]
        if u1[i] < params.collision_pair_rate:
            out["merged"][j] = True
            out["merged_into"][j] = i
            taken[[i, j]] = True
            k += 2
        else:
            k += 1
    out["subscribe"] = clean & ~taken & (u2 < params.subscribe_share)
    taken |= out["subscribe"]
    pid = defect != D["pixel_missing_event_id"]
    out["eid_only"] = nt & fired & pid & ~flags["reload_no_eid"] & ~taken & (u3 < params.eid_only_share)
    taken |= out["eid_only"]
    # any day (the legacy pixel was there before enablement too); orders without a dedup defect
    out["second_dataset"] = (nt & fired & (defect == D["none"]) & ~reload & ~taken
                             & (u4 < params.second_dataset_share))
    return out


def dataset(platform: str) -> str:
    """The destination written on a platform's rows (Meta: the main dataset; others: none)."""
    return DATASET if platform == "meta" else ""


def second_dataset_rows(frame: Any, f: dict) -> Any:
    """The hits the legacy pixel sends to the second dataset."""
    return frame[f["second_dataset"]].assign(destination=SECOND_DATASET)


def set_owner(labels: dict, tp: np.ndarray) -> None:
    """The sentinel unit's order: the earliest pixel hit among the sentinel orders (ties: the
    first order)."""
    s = np.flatnonzero(labels["sentinel"])
    if len(s):
        labels["sentinel_owner"][s[np.argmin(tp[s])]] = True


def pixel_ids(o: Any, f: dict, event_id: np.ndarray, order_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(event_id, order_id) of the pixel rows after the plants."""
    event_id = np.where(f["sentinel"], SENTINEL_ID, event_id)
    event_id = np.where(f["merged"], o.order_id[np.maximum(f["merged_into"], 0)], event_id)
    order_id = np.where(f["eid_only"], "", order_id)
    return event_id, order_id


def server_ids(o: Any, f: dict, event_id: np.ndarray) -> np.ndarray:
    """event_id of the server rows after the plants (the pair's second order sends the first's id)."""
    return np.where(f["merged"], o.order_id[np.maximum(f["merged_into"], 0)], event_id)


def subscribe_rows(frame: Any, f: dict) -> Any:
    """The Subscribe copies of the given per-order rows (pixel or server)."""
    return frame[f["subscribe"]].assign(event_name="Subscribe")
