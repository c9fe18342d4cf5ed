"""Journeys, funnels, channel consistency, magic moments and pain points, and comment themes.

Journeys (:func:`build_journeys`)
---------------------------------
The interaction log has no journey id, so journeys are rebuilt per customer and unit (a trip
is to one hotel) from the order of the configured stages (``journey.stages``), inside the
engine (Ibis over DuckDB); only aggregates come back to pandas. The customer's contacts are
sorted by time and a new journey starts at a contact when

* it is the customer's first contact with the unit, or
* its stage comes *before* the previous contact's stage (a new trip begins), or
* the previous contact was a dead end (``completed`` false) and this one is at a *later*
  stage (the dead end closed that journey), or at the same stage more than
  ``session_gap_days`` later (a fresh attempt, not the same browsing session).

A journey **reached** every stage from its first to its furthest (a walk-in enters at *book*
and passes *pre-arrival* without a contact there) and is **completed** when it reached the
goal stage (``journey.goal_stage``, the last stage by default). Short of the goal, it
**stopped** at its furthest stage when its last contact was a dead end (``completed`` is read
as "the step led on to the next stage"); when the last contact led on but nothing followed,
the journey is **open**: censored by the end of the log, or a trip whose later contacts
interleave with another trip of the same guest to the same unit. Without a ``completed``
column, a journey short of the goal is open when last seen within ``open_days`` of the end
of the log, and stopped otherwise. Open journeys count as having passed their earlier stages
but neither as stopped nor as continued at their last stage, exactly as censored times in a
life table.

Funnel (:func:`funnel`)
-----------------------
Per stage ``k``: ``reached`` (journeys in the funnel at ``k``: stopped there or went further),
``stopped``, ``drop_rate = stopped / reached`` with a Wilson interval, and by the product-limit
(life-table) rule the share of entrants still in the funnel at ``k`` (``share_reaching``) and
the share of entrants whose journey ends at ``k`` (``share_ending``, with a Greenwood-type
log interval). Stages after the goal (post-stay contact) are shown but are not leaks.
The value a leak puts at stake is ``stopped x value of a completed journey`` (mean revenue of
journeys that reached the goal in the same group): volume x drop-off x value.

Moments (:func:`moment_effects`, :func:`forgiveness`)
-----------------------------------------------------
For the transactional survey responses tied to a touchpoint, a *very good* experience (the
moment score, CSAT by default, at or above ``very_good``) and a *bad* one (at or below
``bad``) are compared with the middle answers on the guest's later return (stayed again
within the horizon, from the log), by a linear probability model holding prior behaviour
constant (prior stays, prior revenue, observed prior months, tenure, trip purpose, app and
community status at the time of the answer; :mod:`rox_helpers.loyalty`), with
customer-clustered standard errors. The effect is an adjusted difference in the return rate
(percentage points / 100). Benjamini-Hochberg controls the false discovery rate over all the
touchpoint contrasts tested. A touchpoint is a **magic moment** when a very good experience
is followed by significantly more returns, a **pain point** when a bad one is followed by
significantly fewer. These are observational associations adjusted for prior behaviour, not
experiments.

Moments from the log (:func:`log_moment_frame`, :func:`log_moment_effects`)
---------------------------------------------------------------------------
The interaction log records experiences without asking: how long a contact took
(``duration_min``: a touchpoint's slowest tenth against its middle, and its fastest tenth),
dead ends (``completed`` false), and a dead end followed by the same stage through another
channel (a channel switch); only the signals whose columns the log has are read. Each contact
is followed from the day after its journey *ended* (so a booking is never "followed" by the
stay it booked) for the horizon: did the guest stay again, and how often. The comparison
holds prior behaviour constant (the covariates above, measured before the journey began), with
hotel and month fixed effects, customer-clustered standard errors, and Benjamini-Hochberg over
every touchpoint x signal tested (a family of its own, beside the survey's). A slow or failed
contact followed by significantly fewer returns is a pain point, a fast one followed by more a
magic moment. Both sources are saved together (``source`` = ``survey`` or ``interactions``,
:func:`combine_moments`).

Themes (:func:`comment_themes`)
-------------------------------
Comments are first sorted by language (:func:`detect_language`, a stop-word and accent
vote); those in another language than ``journey.language`` are counted and set aside. The
rest go through TF-IDF and NMF (scikit-learn, seeded), plus any lexicon of themes in
``journey.themes``. Per theme: volume, NPS of those who raise it against the rest with an
interval, the attributes that go with it, and up to three short example comments that are
checked again for personal data (e-mail, phone) before being shown.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from rox_helpers.errors import ConfigError, DataValidationError
from rox_helpers.features import EXACT, exact_sum
from rox_helpers.stats import bh_qvalues as benjamini_hochberg
from rox_helpers.stats import wilson_interval

__all__ = [
    "Journeys",
    "ThemeResult",
    "benjamini_hochberg",
    "biggest_leaks",
    "build_journeys",
    "channel_consistency",
    "combine_moments",
    "comment_themes",
    "detect_language",
    "forgiveness",
    "funnel",
    "interaction_moments",
    "journey_findings",
    "journey_map",
    "log_moment_effects",
    "log_moment_frame",
    "moment_effects",
    "nps_difference",
    "pooled_moments",
    "touchpoint_stages",
    "wilson_interval",
]

ALL = "All"


# --------------------------------------------------------------------------------------
# Small statistics
# --------------------------------------------------------------------------------------


def _nps_parts(scores: pd.Series) -> tuple[int, float, float]:
    s = pd.to_numeric(scores, errors="coerce").dropna()
    n = len(s)
    if n == 0:
        return 0, np.nan, np.nan
    prom = float((s >= 9).mean())
    det = float((s <= 6).mean())
    nps = prom - det
    var = (prom + det - nps**2) / n
    return n, 100 * nps, 100 * np.sqrt(var)


def nps_difference(group: pd.Series, rest: pd.Series, level: float = 0.95) -> dict[str, float]:
    """NPS (-100..100) of a group against the rest, with a normal interval on the difference.

    Each NPS is the share of promoters (9-10) minus the share of detractors (0-6); its
    variance is ``(p_prom + p_det - nps^2) / n`` (a difference of two shares of one
    multinomial); the two groups are independent.

    Returns
    -------
    dict
        ``n_group``, ``nps_group``, ``n_rest``, ``nps_rest``, ``difference``, ``ci_low``,
        ``ci_high``, ``p_value`` (two-sided z-test).
    """
    n1, a, se1 = _nps_parts(group)
    n2, b, se2 = _nps_parts(rest)
    diff = a - b
    se = float(np.hypot(se1, se2))
    z = stats.norm.ppf(0.5 + level / 2)
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else np.nan
    return {
        "n_group": n1,
        "nps_group": a,
        "n_rest": n2,
        "nps_rest": b,
        "difference": diff,
        "ci_low": diff - z * se,
        "ci_high": diff + z * se,
        "p_value": p,
    }


# --------------------------------------------------------------------------------------
# Journeys
# --------------------------------------------------------------------------------------


@dataclass
class Journeys:
    """Journeys rebuilt from the log, as aggregates.

    Attributes
    ----------
    paths : pandas.DataFrame
        One row per (``entry``, ``last``, ``status``, ``channel``, ``segment``): ``entry`` and
        ``last`` are the first and furthest stage (names), ``status`` ``stopped``,
        ``completed`` or ``open``, ``channel`` the channel of the journey's first contact,
        ``segment`` the behavioural segment (``All`` without one); ``journeys``,
        ``customers`` (distinct within the row) and ``revenue`` (sum).
    transitions : pandas.DataFrame
        From each stage to the next configured stage, among journeys with contacts at both:
        ``n``, ``median_days``, ``p25_days``, ``p75_days``.
    contacts : pandas.DataFrame
        Stage x channel: ``contacts``, ``customers``, ``journeys``, ``completed_share``,
        ``revenue``, ``median_minutes``.
    stages : list of str
        The configured order.
    goal_stage : str
        Journeys that reach it are complete.
    info : dict
        ``n_journeys``, ``n_customers``, ``n_contacts``, ``n_unstaged`` (contacts at stages
        that are not configured, left out), ``data_end``, ``keys``.
    numbered : ibis.Table, optional
        The contacts with their journey number, cached in the engine (for
        :func:`log_moment_frame`, which then does not number them again).
    """

    paths: pd.DataFrame
    transitions: pd.DataFrame
    contacts: pd.DataFrame
    stages: list[str]
    goal_stage: str
    info: dict = field(default_factory=dict)
    numbered: ibis.Table | None = field(default=None, repr=False, compare=False)


def _require_stages(stages: Sequence[str], goal_stage: str | None) -> tuple[list[str], str]:
    stages = [str(s) for s in stages]
    if len(stages) < 2:
        raise ConfigError(
            "journey.stages lists fewer than two stages, so there is no journey to rebuild",
            file="engagement.yml",
            column="journey.stages",
            rule="at least two journey stages, in order",
            fix="List the journey_stage values in order, e.g. [discover, book, stay].",
        )
    if len(set(stages)) != len(stages):
        raise ConfigError(
            "journey.stages lists a stage twice",
            file="engagement.yml",
            column="journey.stages",
            rule="each stage once",
            fix="Remove the repeated stage.",
        )
    goal = goal_stage or stages[-1]
    if goal not in stages:
        raise ConfigError(
            f"journey.goal_stage {goal!r} is not one of journey.stages",
            file="engagement.yml",
            column="journey.goal_stage",
            rule="the goal is a configured stage",
            fix=f"Use one of {', '.join(stages)}.",
        )
    return stages, goal


def _need(table: ibis.Table, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"the interaction log lacks {', '.join(missing)}, needed to rebuild journeys",
            file="interactions",
            column=missing[0],
            rule="required column",
            fix=f"Map {', '.join(missing)} in engagement.yml (data.interactions.columns).",
        )


def _numbered_contacts(
    interactions: ibis.Table,
    stages: Sequence[str],
    *,
    session_gap_days: float = 7.0,
    keys: Sequence[str] | None = None,
    count: bool = True,
) -> tuple[ibis.Table, list[str], int | None, int | None]:
    """The log's contacts at configured stages, each with its ``journey_no`` (the session
    rules of the module docstring), in the engine.

    Returns ``(contacts, part, n_contacts, n_unstaged)``: ``contacts`` has ``stage_idx``,
    ``done`` (``completed``, missing read as true), ``chan``, ``rev``, ``minutes`` and
    ``journey_no``; ``part`` the columns that keep journeys apart (``customer_id`` and the
    keys, ``unit_id`` by default). ``count=False`` skips the two counts (``None``).
    """
    _need(interactions, ("customer_id", "timestamp", "journey_stage"))
    cols = set(interactions.columns)
    if keys is None:
        keys = ["unit_id"] if "unit_id" in cols else []
    keys = [k for k in keys if k in cols]
    part = ["customer_id", *keys]
    t = interactions.filter(interactions.customer_id.notnull(), interactions.timestamp.notnull())
    n_contacts = int(t.count().to_pyarrow().as_py()) if count else None
    idx = ibis.cases(*[(t.journey_stage == s, i) for i, s in enumerate(stages)], else_=None)
    t = t.mutate(
        stage_idx=idx.cast("int64"),
        done=t.completed.fill_null(True) if "completed" in cols else ibis.literal(True),
        chan=t.channel.fill_null("(unknown)") if "channel" in cols else ibis.literal(ALL),
        rev=t.revenue.fill_null(0).cast(EXACT)
        if "revenue" in cols
        else ibis.literal(0).cast(EXACT),
        minutes=t.duration_min.cast("float64") if "duration_min" in cols else ibis.null("float64"),
        **{k: t[k].cast("string").fill_null("(none)") for k in keys},
    )
    staged = t.filter(t.stage_idx.notnull())
    n_unstaged = n_contacts - int(staged.count().to_pyarrow().as_py()) if count else None
    t = staged
    # a total order of each guest's contacts: contacts at the same time, stage, outcome and
    # channel are ordered by touchpoint, minutes and revenue, so which one comes first (the
    # journey's channel and outcome, a switch of touchpoint) does not depend on the engine
    order = [t.timestamp, t.stage_idx, t.done, t.chan]
    if "touchpoint" in cols:
        order.append(t.touchpoint)
    order += [t.minutes, t.rev]
    w = ibis.window(group_by=part, order_by=order)
    t = t.mutate(
        seq=ibis.row_number().over(w),
        prev_idx=t.stage_idx.lag().over(w),
        prev_ts=t.timestamp.lag().over(w),
        prev_done=t.done.lag().over(w),
    )
    gap = (t.timestamp.epoch_seconds() - t.prev_ts.epoch_seconds()).cast("float64") / 86400.0
    new = (
        t.prev_idx.isnull()
        | (t.stage_idx < t.prev_idx)
        | (~t.prev_done & ((t.stage_idx > t.prev_idx) | (gap > float(session_gap_days))))
    )
    t = t.mutate(new=new.cast("int64"))
    cum = ibis.window(group_by=part, order_by=order, preceding=None, following=0)
    t = t.mutate(journey_no=t.new.sum().over(cum))
    # only what the journeys and the log moments read: the numbered log is cached (ten
    # million contacts x every column of the log and of the numbering is gigabytes)
    keep = [*part, "timestamp", "journey_stage", "stage_idx", "done", "chan", "rev", "minutes"]
    keep += [c for c in ("touchpoint", "completed") if c in cols and c not in keep]
    t = t.select(*keep, "journey_no", "seq")
    return t, part, n_contacts, n_unstaged


def build_journeys(
    interactions: ibis.Table,
    stages: Sequence[str],
    *,
    goal_stage: str | None = None,
    session_gap_days: float = 7.0,
    open_days: float = 30.0,
    segments: pd.DataFrame | None = None,
    segment_column: str = "name",
    keys: Sequence[str] | None = None,
) -> Journeys:
    """Rebuild journeys per customer from the interaction log (see the module docstring).

    Parameters
    ----------
    interactions : ibis.Table
        Canonical log: ``customer_id``, ``timestamp``, ``journey_stage``; ``completed``,
        ``channel``, ``revenue``, ``duration_min`` and ``unit_id`` when present.
    stages : sequence of str
        Stage names in journey order (``journey.stages``).
    goal_stage : str, optional
        Stage that makes a journey complete; the last stage by default.
    session_gap_days : float, default=7
        After a dead end, a contact at the same stage this much later starts a new journey.
    open_days : float, default=30
        A journey short of the goal last seen within this many days of the end of the log
        may still continue: it is open, not stopped.
    segments : pandas.DataFrame, optional
        ``customer_id`` and ``segment_column`` (step 02's ``customer_segments``).
    keys : sequence of str, optional
        Columns besides ``customer_id`` that keep journeys apart (``unit_id`` by default
        when the log has it: a trip is to one hotel).

    Returns
    -------
    Journeys

    Raises
    ------
    ConfigError
        If fewer than two stages are configured or the goal is not one of them.
    DataValidationError
        If the log lacks ``customer_id``, ``timestamp`` or ``journey_stage``.
    """
    stages, goal = _require_stages(stages, goal_stage)
    t, part, n_contacts, n_unstaged = _numbered_contacts(
        interactions, stages, session_gap_days=session_gap_days, keys=keys
    )
    t = t.cache()  # numbered once, read by every aggregate below (and by log moments)
    cols = set(interactions.columns)
    aggs = {
        "entry": t.stage_idx.min(),
        "last": t.stage_idx.max(),
        # the last and the first contact in the numbering's total order (seq is unique per
        # guest; a timestamp ties in a log of dates)
        "last_done": t.done.argmax(t.seq),
        "channel": t.chan.argmin(t.seq),
        "first_ts": t.timestamp.min(),
        "last_ts": t.timestamp.max(),
        "revenue": t.rev.sum(),
        **{f"ts_{i}": t.timestamp.min(where=t.stage_idx == i) for i in range(len(stages))},
    }
    j = t.group_by([*part, "journey_no"]).aggregate(**aggs)
    data_end = t.timestamp.max().to_pyarrow().as_py()
    goal_idx = stages.index(goal)
    end_lit = ibis.literal(pd.Timestamp(data_end).to_pydatetime())
    recent = (end_lit.epoch_seconds() - j.last_ts.epoch_seconds()).cast("float64") / 86400.0 <= (
        float(open_days)
    )
    if "completed" in cols:
        # the last contact led on, yet nothing followed: censored by the end of the log, or
        # its next contacts went to another journey of the guest's; never a drop-off
        status = ibis.cases(
            (j["last"] >= goal_idx, "completed"), (~j.last_done, "stopped"), else_="open"
        )
    else:
        status = ibis.cases((j["last"] >= goal_idx, "completed"), (recent, "open"), else_="stopped")
    j = j.mutate(status=status)
    if segments is not None and len(segments):
        seg = segments[["customer_id", segment_column]].dropna(subset=["customer_id"])
        seg = seg.drop_duplicates("customer_id").rename(columns={segment_column: "segment"})
        seg = seg.assign(
            customer_id=seg["customer_id"].astype("str"),
            segment=seg["segment"].astype("str"),
        )
        mt = ibis.memtable(pd.DataFrame(seg))
        j = j.left_join(mt, j.customer_id == mt.customer_id).drop("customer_id_right")
        j = j.mutate(segment=j.segment.fill_null("(no segment)"))
    else:
        j = j.mutate(segment=ibis.literal(ALL))
    j = j.cache()  # one row per journey, read by the paths, the transitions and the counts
    grp = j.group_by(["entry", "last", "status", "channel", "segment"]).aggregate(
        journeys=j.count(),
        customers=j.customer_id.nunique(),
        revenue=j.revenue.sum().cast("float64"),
    )
    paths = grp.to_pandas()
    paths["entry"] = [stages[int(i)] for i in paths["entry"]]
    paths["last"] = [stages[int(i)] for i in paths["last"]]
    paths = paths.sort_values(["entry", "last", "status", "channel", "segment"]).reset_index(
        drop=True
    )
    # time between consecutive configured stages
    rows = []
    for i in range(len(stages) - 1):
        a, b = j[f"ts_{i}"], j[f"ts_{i + 1}"]
        d = (b.epoch_seconds() - a.epoch_seconds()).cast("float64") / 86400.0
        sub = j.filter(a.notnull(), b.notnull())
        rows.append(
            sub.aggregate(
                n=sub.count(),
                median_days=d.quantile(0.5),
                p25_days=d.quantile(0.25),
                p75_days=d.quantile(0.75),
            ).mutate(from_stage=ibis.literal(stages[i]), to_stage=ibis.literal(stages[i + 1]))
        )
    transitions = ibis.union(*rows).to_pandas() if rows else pd.DataFrame()
    order_map = {s: i for i, s in enumerate(stages)}
    transitions = transitions.sort_values("from_stage", key=lambda s: s.map(order_map)).reset_index(
        drop=True
    )[["from_stage", "to_stage", "n", "median_days", "p25_days", "p75_days"]]
    # contacts per stage x channel
    t2 = t.mutate(
        jid=ibis.literal("").concat(*[t[c].cast("string") + "|" for c in part])
        + t.journey_no.cast("string")
    )
    contacts = (
        t2.group_by([t2.stage_idx, t2.chan.name("channel")])
        .aggregate(
            contacts=t2.count(),
            customers=t2.customer_id.nunique(),
            journeys=t2.jid.nunique(),
            completed_share=t2.done.cast("float64").mean(),
            revenue=t2.rev.sum().cast("float64"),
            median_minutes=t2.minutes.quantile(0.5),
        )
        .to_pandas()
    )
    contacts.insert(0, "stage", [stages[int(i)] for i in contacts["stage_idx"]])
    contacts = (
        contacts.sort_values(["stage_idx", "channel"])
        .drop(columns="stage_idx")
        .reset_index(drop=True)
    )
    info = {
        "n_journeys": int(paths["journeys"].sum()),
        "n_customers": int(j.customer_id.nunique().to_pyarrow().as_py()),
        "n_contacts": n_contacts,
        "n_unstaged": n_unstaged,
        "data_end": str(pd.Timestamp(data_end)),
        "keys": part,
        "session_gap_days": float(session_gap_days),
        "open_days": float(open_days),
    }
    return Journeys(paths, transitions, contacts, stages, goal, info, numbered=t)


# --------------------------------------------------------------------------------------
# Funnel
# --------------------------------------------------------------------------------------


def _funnel_one(p: pd.DataFrame, stages: list[str], goal: str, level: float) -> pd.DataFrame:
    pos = {s: i for i, s in enumerate(stages)}
    e = p["entry"].map(pos).to_numpy()
    last = p["last"].map(pos).to_numpy()
    n = p["journeys"].to_numpy(dtype="float64")
    status = p["status"].to_numpy()
    done = status == "completed"
    value = p.loc[done, "revenue"].sum() / n[done].sum() if n[done].sum() > 0 else np.nan
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    surv, var_log = 1.0, 0.0
    goal_idx = pos[goal]
    for k, s in enumerate(stages):
        inside = e <= k
        passed = float(n[inside & (last > k)].sum())
        stopped = float(n[inside & (last == k) & (status == "stopped")].sum())
        opened = float(n[inside & (last == k) & (status == "open")].sum())
        ended = float(n[inside & (last == k) & done].sum())
        final = k == len(stages) - 1
        reached = passed + stopped + (ended if final else 0.0)
        if not final:
            # completed journeys ending at or after the goal ended there by choice, not a leak
            stopped += ended
            reached += ended
        h = stopped / reached if reached > 0 and not final else np.nan
        lo, hi = wilson_interval(stopped, reached, level) if not final else ([np.nan], [np.nan])
        share_ending = surv * h if np.isfinite(h) else np.nan
        if np.isfinite(h) and 0 < h < 1:
            v = var_log + (1 - h) / (reached * h)
            end_lo, end_hi = (
                share_ending * np.exp(-z * np.sqrt(v)),
                share_ending * np.exp(z * np.sqrt(v)),
            )
        else:
            end_lo = end_hi = np.nan
        leak = k < goal_idx
        rows.append(
            {
                "stage": s,
                "reached": reached,
                "continued": passed,
                "stopped": stopped,
                "open": opened,
                "drop_rate": h,
                "ci_low": float(lo[0]),
                "ci_high": float(hi[0]),
                "share_reaching": surv,
                "share_ending": share_ending,
                "share_ending_ci_low": end_lo,
                "share_ending_ci_high": min(end_hi, 1.0) if np.isfinite(end_hi) else end_hi,
                "is_leak_stage": leak,
                "value_per_journey": value,
                "value_at_stake": stopped * value if leak else 0.0,
            }
        )
        if np.isfinite(h):
            if 0 < h < 1:
                var_log += h / (reached * (1 - h))
            surv *= 1 - h
    return pd.DataFrame(rows)


def funnel(
    journeys: Journeys,
    *,
    by: str | None = None,
    entry_stage: str | None = None,
    level: float = 0.95,
    reliability_base: int = 30,
) -> pd.DataFrame:
    """The funnel by stage: reach, drop-off with a Wilson interval, and value at stake.

    Parameters
    ----------
    journeys : Journeys
        From :func:`build_journeys`.
    by : {"channel", "segment"}, optional
        One funnel per group (the channel of the journey's first contact, or the segment).
    entry_stage : str, optional
        Keep only journeys that entered at this stage (e.g. the first stage, to compare
        with a process that starts there); all journeys by default (walk-ins join at the
        stage they enter).
    level : float, default=0.95
        Interval level.
    reliability_base : int, default=30
        Stages with fewer journeys reaching them are flagged ``reliable = False``.

    Returns
    -------
    pandas.DataFrame
        One row per group and stage: ``group`` (``All`` overall), ``stage``, ``reached``,
        ``continued``, ``stopped``, ``open``, ``drop_rate``, ``ci_low``, ``ci_high``,
        ``share_reaching`` (product-limit share of entrants still in at this stage),
        ``share_ending`` (share of entrants whose journey ends here) with
        ``share_ending_ci_low`` / ``share_ending_ci_high``, ``is_leak_stage`` (before the
        goal), ``value_per_journey`` (mean revenue of a completed journey in the group),
        ``value_at_stake`` (stopped x value, leak stages only), ``reliable``.
    """
    p = journeys.paths
    if entry_stage is not None:
        if entry_stage not in journeys.stages:
            raise ValueError(f"entry_stage {entry_stage!r} is not a configured stage")
        p = p[p["entry"] == entry_stage]
    if by is None:
        groups = [(ALL, p)]
    else:
        if by not in p.columns:
            raise ValueError(f"cannot split the funnel by {by!r}; use 'channel' or 'segment'")
        groups = [(str(g), d) for g, d in p.groupby(by, sort=True)]
    out = []
    for g, d in groups:
        f = _funnel_one(d, journeys.stages, journeys.goal_stage, level)
        f.insert(0, "group", g)
        out.append(f)
    res = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    if len(res):
        res.insert(0, "by", by or "overall")
        res["reliable"] = res["reached"] >= reliability_base
    return res


def biggest_leaks(funnels: pd.DataFrame, *, top: int = 5) -> pd.DataFrame:
    """Leaks (stage drop-offs before the goal) ranked by value at stake, within each cut.

    ``funnels`` stacks :func:`funnel` results (overall, by channel, by segment). Value at
    stake is volume x drop-off x value: journeys that stopped at the stage times the mean
    value of a completed journey in the same group. Each cut (``by``) is ranked on its own,
    so the overall funnel and its channel split are never added up; cells below the
    reliability base are left out.

    Returns
    -------
    pandas.DataFrame
        The funnel rows kept, with ``rank`` (1 = most value at stake within ``by``).
    """
    f = funnels[funnels["is_leak_stage"] & funnels["reliable"] & (funnels["stopped"] > 0)]
    f = f.sort_values(["by", "value_at_stake", "stopped"], ascending=[True, False, False])
    f = f.assign(rank=f.groupby("by").cumcount() + 1)
    return f[f["rank"] <= top].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Journey map
# --------------------------------------------------------------------------------------


def touchpoint_stages(interactions: ibis.Table) -> dict[str, str]:
    """Touchpoint -> stage (the stage most of its contacts carry), from the log."""
    if not {"touchpoint", "journey_stage"} <= set(interactions.columns):
        return {}
    t = interactions.filter(interactions.touchpoint.notnull(), interactions.journey_stage.notnull())
    g = t.group_by(["touchpoint", "journey_stage"]).aggregate(n=t.count()).to_pandas()
    g = g.sort_values(["touchpoint", "n", "journey_stage"], ascending=[True, False, True])
    return dict(g.drop_duplicates("touchpoint")[["touchpoint", "journey_stage"]].to_numpy())


def journey_map(
    journeys: Journeys,
    survey: pd.DataFrame | None = None,
    *,
    tp_stage: Mapping[str, str] | None = None,
    score: str = "nps",
    reliability_base: int = 30,
) -> pd.DataFrame:
    """Stages x channels: contacts, journeys, completion and the survey score there.

    Survey responses tied to a touchpoint are placed at the touchpoint's stage
    (``tp_stage``, from :func:`touchpoint_stages`) and their channel; ``nps`` (or the mean
    of another score) is shown only where the base reaches ``reliability_base``.

    Returns
    -------
    pandas.DataFrame
        ``stage``, ``channel``, ``contacts``, ``customers``, ``journeys``,
        ``completed_share``, ``median_minutes``, ``responses``, ``score`` (NPS -100..100,
        or the mean), ``score_name``.
    """
    m = journeys.contacts.copy()
    m["responses"] = 0
    m["score"] = np.nan
    m["score_name"] = score
    if survey is not None and tp_stage and {"touchpoint", "channel", score} <= set(survey.columns):
        s = survey[survey["touchpoint"].notna() & survey[score].notna()].copy()
        s["stage"] = s["touchpoint"].map(dict(tp_stage))
        s = s[s["stage"].notna()]
        for (stage, chan), d in s.groupby(["stage", "channel"]):
            if score == "nps":
                n, val, _ = _nps_parts(d[score])
            else:
                n, val = len(d), float(d[score].mean())
            hit = (m["stage"] == stage) & (m["channel"] == chan)
            m.loc[hit, "responses"] = n
            if n >= reliability_base:
                m.loc[hit, "score"] = val
    return m


# --------------------------------------------------------------------------------------
# Omnichannel consistency
# --------------------------------------------------------------------------------------


def channel_consistency(
    survey: pd.DataFrame,
    attributes: Sequence[str],
    *,
    channel: str = "channel",
    labels: Mapping[str, str] | None = None,
    lower_is_better: Sequence[str] = ("ces",),
    min_base: int = 30,
    alpha: float = 0.05,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same attribute scored through different channels: means, gaps and significance.

    Per attribute, channels with at least ``min_base`` ratings are compared: an omnibus
    test that the channel means are equal (Alexander-Govern, robust to unequal variances),
    with Benjamini-Hochberg over the attributes; the gap between the best and the worst
    channel with a Welch interval (descriptive: the pair is chosen after looking). For the
    measures in ``lower_is_better`` (customer effort) the best channel has the lowest mean.

    Returns
    -------
    (means, gaps) : tuple of pandas.DataFrame
        ``means``: ``attribute``, ``label``, ``channel``, ``n``, ``mean``, ``ci_low``,
        ``ci_high``. ``gaps``: ``attribute``, ``label``, ``n_channels``, ``n`` (ratings
        over the channels compared), ``best_channel``,
        ``worst_channel``, ``gap``, ``ci_low``, ``ci_high``, ``p_value`` (omnibus),
        ``q_value``, ``significant``.
    """
    if channel not in survey.columns:
        raise DataValidationError(
            "the survey has no channel column, so channels cannot be compared",
            file="cx_survey",
            column=channel,
            rule="required column",
            fix="Map the channel column of the survey in engagement.yml.",
        )
    labels = dict(labels or {})
    z = stats.t
    mrows, grows = [], []
    for att in attributes:
        if att not in survey.columns:
            continue
        d = survey[[channel, att]].dropna()
        groups = {c: g[att].to_numpy(dtype="float64") for c, g in d.groupby(channel)}
        groups = {c: v for c, v in groups.items() if len(v) >= min_base}
        for c, v in groups.items():
            se = v.std(ddof=1) / np.sqrt(len(v))
            t = z.ppf(0.5 + level / 2, len(v) - 1)
            mrows.append(
                {
                    "attribute": att,
                    "label": labels.get(att, att),
                    "channel": c,
                    "n": len(v),
                    "mean": v.mean(),
                    "ci_low": v.mean() - t * se,
                    "ci_high": v.mean() + t * se,
                }
            )
        if len(groups) < 2:
            continue
        vals = list(groups.values())
        if all(np.var(v) == 0 for v in vals):
            p = 1.0 if len({float(v[0]) for v in vals}) == 1 else 0.0
        else:
            p = float(stats.alexandergovern(*vals).pvalue)
        sign = -1.0 if att in set(lower_is_better) else 1.0
        means = {c: sign * v.mean() for c, v in groups.items()}
        best = max(means, key=means.get)
        worst = min(means, key=means.get)
        a, b = groups[best], groups[worst]
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = np.sqrt(va + vb)
        dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1
        t = z.ppf(0.5 + level / 2, dof)
        gap = means[best] - means[worst]
        grows.append(
            {
                "attribute": att,
                "label": labels.get(att, att),
                "n_channels": len(groups),
                "n": sum(len(v) for v in vals),
                "best_channel": best,
                "worst_channel": worst,
                "gap": gap,
                "ci_low": gap - t * se,
                "ci_high": gap + t * se,
                "p_value": p,
            }
        )
    means = pd.DataFrame(
        mrows, columns=["attribute", "label", "channel", "n", "mean", "ci_low", "ci_high"]
    )
    gaps = pd.DataFrame(
        grows,
        columns=[
            "attribute",
            "label",
            "n_channels",
            "n",
            "best_channel",
            "worst_channel",
            "gap",
            "ci_low",
            "ci_high",
            "p_value",
        ],
    )
    gaps["q_value"] = benjamini_hochberg(gaps["p_value"]) if len(gaps) else []
    gaps["significant"] = gaps["q_value"] < alpha
    return means, gaps.sort_values("gap", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Magic moments and pain points
# --------------------------------------------------------------------------------------

#: prior behaviour held constant (built from loyalty's follow-up frame)
MOMENT_COVARIATES: tuple[str, ...] = (
    "log_prior_stays",
    "log_prior_revenue",
    "log_prior_months",
    "log_tenure_years",
    "trip_purpose",
    "app_user_at_response",
    "community_member_at_response",
)


def _design(df: pd.DataFrame) -> pd.DataFrame:
    from rox_helpers.loyalty import TRANSFORMS

    cols: dict[str, pd.Series] = {}
    for name in MOMENT_COVARIATES:
        if name in TRANSFORMS:
            try:
                v = TRANSFORMS[name](df).astype("float64")
            except KeyError:
                continue
        elif name in df.columns:
            s = df[name]
            if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                v = s.astype("float64")
            else:
                text = s.astype("object").where(s.notna(), "(missing)").astype("str")
                for level in sorted(text.unique())[1:]:
                    cols[f"{name}[{level}]"] = (text == level).astype("float64")
                continue
        else:
            continue
        if v.notna().all() and v.nunique() > 1:
            cols[name] = v
    return pd.DataFrame(cols, index=df.index)


def _lpm(
    y: pd.Series, focal: pd.DataFrame, covs: pd.DataFrame, groups: pd.Series
) -> tuple[pd.Series, pd.DataFrame]:
    """Linear probability model with customer-clustered (CR1) standard errors."""
    import statsmodels.api as sm
    from threadpoolctl import threadpool_limits

    X = pd.concat([pd.Series(1.0, index=y.index, name="const"), focal, covs], axis=1)
    X = X.loc[:, (X.std() > 0) | (X.columns == "const")]
    codes = pd.factorize(groups.astype("str"), sort=True)[0]
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.OLS(y.to_numpy(dtype="float64"), X.to_numpy(dtype="float64")).fit(
            cov_type="cluster", cov_kwds={"groups": codes}
        )
    params = pd.Series(np.asarray(res.params), index=X.columns)
    cov = pd.DataFrame(np.asarray(res.cov_params()), index=X.columns, columns=X.columns)
    return params, cov


def _moment_frame(
    followup: pd.DataFrame, score: str, horizon: int, very_good: float, bad: float
) -> pd.DataFrame:
    need = ["touchpoint", score, f"retained_{horizon}m", "customer_id"]
    missing = [c for c in need if c not in followup.columns]
    if missing:
        raise DataValidationError(
            f"the follow-up frame lacks {', '.join(missing)} for the moments analysis",
            file="cx_survey",
            column=missing[0],
            rule="transactional responses with a touchpoint, followed in the log",
            fix="Map touchpoint and the moment score (journey.moment_score) in the survey.",
        )
    d = followup[followup["touchpoint"].notna() & followup[score].notna()]
    d = d[d[f"retained_{horizon}m"].notna()].copy()
    d["very_good"] = (d[score] >= very_good).astype("float64")
    d["bad"] = (d[score] <= bad).astype("float64")
    d["returned"] = d[f"retained_{horizon}m"].astype("float64")
    return d


def moment_effects(
    followup: pd.DataFrame,
    *,
    score: str = "csat",
    very_good: float = 5,
    bad: float = 2,
    horizon: int = 6,
    min_base: int = 30,
    alpha: float = 0.05,
    level: float = 0.95,
) -> pd.DataFrame:
    """Magic moments and pain points per touchpoint, holding prior behaviour constant.

    Parameters
    ----------
    followup : pandas.DataFrame
        :func:`rox_helpers.loyalty.followup_table` of the survey (responses with a
        ``touchpoint``; relationship responses have none and are not used).
    score : str, default="csat"
        The experience score of the touchpoint.
    very_good, bad : float
        Scores at or above ``very_good`` are a very good experience, at or below ``bad`` a
        bad one; the contrast group is the answers in between.
    horizon : int, default=6
        Months of follow-up: the outcome is "stayed again within the horizon" (only
        responses whose whole window is in the data).
    min_base : int, default=30
        A contrast needs this many responses in each of its two groups.

    Returns
    -------
    pandas.DataFrame
        Two rows per touchpoint (``contrast`` ``very_good`` and ``bad``): ``source``
        (``"survey"``), ``touchpoint``, ``signal`` (the answers in the group, in words),
        ``kind`` (``magic``, ``pain`` or ``none``), ``effect`` (adjusted difference in the
        return rate against the middle answers), ``ci_low``, ``ci_high``, ``raw`` (the
        unadjusted difference), ``p_value``, ``q`` (Benjamini-Hochberg over every contrast
        tested), ``n`` (responses in the contrast), ``n_group``, ``return_rate_middle``,
        ``horizon_months``, ``note``.
    """
    d = _moment_frame(followup, score, horizon, very_good, bad)
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for tp, g in d.groupby("touchpoint", sort=True):
        for contrast in ("very_good", "bad"):
            sub = g[(g[contrast] == 1) | ((g["very_good"] == 0) & (g["bad"] == 0))]
            n_group = int(sub[contrast].sum())
            n_mid = len(sub) - n_group
            row = {
                "touchpoint": tp,
                "contrast": contrast,
                "n": len(sub),
                "n_group": n_group,
                "return_rate_middle": sub.loc[sub[contrast] == 0, "returned"].mean()
                if n_mid
                else np.nan,
                "effect": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "raw": np.nan,
                "p_value": np.nan,
                "note": "",
            }
            if n_group < min_base or n_mid < min_base:
                row["note"] = f"not tested: fewer than {min_base} responses in a group"
                rows.append(row)
                continue
            row["raw"] = sub.loc[sub[contrast] == 1, "returned"].mean() - row["return_rate_middle"]
            params, cov = _lpm(sub["returned"], sub[[contrast]], _design(sub), sub["customer_id"])
            est, se = float(params[contrast]), float(np.sqrt(cov.loc[contrast, contrast]))
            row.update(
                effect=est,
                ci_low=est - z * se,
                ci_high=est + z * se,
                p_value=float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else np.nan,
            )
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(
            columns=[
                "source",
                "touchpoint",
                "contrast",
                "signal",
                "kind",
                "effect",
                "ci_low",
                "ci_high",
                "q",
                "n",
            ]
        )
    out["q"] = benjamini_hochberg(out["p_value"])
    out["kind"] = _moment_kind(out, alpha)
    out["horizon_months"] = horizon
    out["score"] = score
    out["source"] = "survey"
    out["signal"] = np.where(
        out["contrast"] == "very_good",
        f"{score} at or above {very_good:g}",
        f"{score} at or below {bad:g}",
    )
    # the survey rows have no stays effect (that comes with the log moments)
    cols = [c for c in MOMENT_COLUMNS if not c.startswith("stays_")]
    return out[cols]


def pooled_moments(
    followup: pd.DataFrame,
    *,
    score: str = "csat",
    very_good: float = 5,
    bad: float = 2,
    horizon: int = 6,
    level: float = 0.95,
) -> pd.DataFrame:
    """Very good and bad experiences against the middle, over all touchpoints together.

    The same model as :func:`moment_effects` with touchpoint fixed effects: more power than
    any one touchpoint, for the question "do moments matter at all here?".

    Returns
    -------
    pandas.DataFrame
        Rows ``very_good`` and ``bad``: ``contrast``, ``effect``, ``ci_low``, ``ci_high``,
        ``p_value``, ``n``, ``n_group``, ``horizon_months``.
    """
    d = _moment_frame(followup, score, horizon, very_good, bad)
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for contrast in ("very_good", "bad"):
        sub = d[(d[contrast] == 1) | ((d["very_good"] == 0) & (d["bad"] == 0))]
        row = {"contrast": contrast, "n": len(sub), "n_group": int(sub[contrast].sum())}
        if sub[contrast].nunique() < 2:
            rows.append(row)
            continue
        tp = pd.get_dummies(sub["touchpoint"], prefix="tp", drop_first=True, dtype="float64")
        covs = pd.concat([_design(sub), tp], axis=1)
        params, cov = _lpm(sub["returned"], sub[[contrast]], covs, sub["customer_id"])
        est, se = float(params[contrast]), float(np.sqrt(cov.loc[contrast, contrast]))
        row.update(
            effect=est,
            ci_low=est - z * se,
            ci_high=est + z * se,
            p_value=float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else np.nan,
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    out["horizon_months"] = horizon
    return out


def forgiveness(
    followup: pd.DataFrame,
    attributes: Sequence[str],
    *,
    score: str = "csat",
    very_good: float = 5,
    problem_max: float = 4,
    horizon: int = 6,
    min_base: int = 30,
    level: float = 0.95,
) -> pd.DataFrame:
    """Forgiveness: does a very good touchpoint experience after a problem bring guests back?

    A *problem* is any rated attribute of the stay at or below ``problem_max``. Among the
    responses with a problem, guests who still rated the touchpoint very well (``score >=
    very_good``, *recovered*) are compared with the others on the return rate, holding prior
    behaviour constant (touchpoint dummies added); the cost of a problem is shown beside it
    (problem against none, among responses that were not very good).

    Returns
    -------
    pandas.DataFrame
        Rows ``recovery`` (recovered vs unrecovered problem) and ``cost_of_problem``:
        ``comparison``, ``n``, ``n_group``, ``rate_group``, ``rate_rest``, ``effect``,
        ``ci_low``, ``ci_high``, ``p_value``, ``share_recovered`` (of the problem cost,
        recovery effect / -cost, when both are estimated).
    """
    d = _moment_frame(followup, score, horizon, very_good, -np.inf)
    atts = [a for a in attributes if a in d.columns]
    if not atts:
        raise DataValidationError(
            "no rated attributes in the survey to find problems with",
            file="cx_survey",
            rule="attribute ratings (codebook)",
            fix="Declare the rated attributes in the codebook.",
        )
    d["problem"] = (d[atts].le(problem_max).any(axis=1)).astype("float64")
    z = stats.norm.ppf(0.5 + level / 2)
    tp = pd.get_dummies(d["touchpoint"], prefix="tp", drop_first=True, dtype="float64")
    specs = [
        ("recovery", d[d["problem"] == 1], "very_good"),
        ("cost_of_problem", d[d["very_good"] == 0], "problem"),
    ]
    rows = []
    for name, sub, focal in specs:
        n_group = int(sub[focal].sum())
        row = {
            "comparison": name,
            "n": len(sub),
            "n_group": n_group,
            "rate_group": sub.loc[sub[focal] == 1, "returned"].mean(),
            "rate_rest": sub.loc[sub[focal] == 0, "returned"].mean(),
            "effect": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
        }
        if n_group >= min_base and len(sub) - n_group >= min_base:
            covs = pd.concat([_design(sub), tp.loc[sub.index]], axis=1)
            params, cov = _lpm(sub["returned"], sub[[focal]], covs, sub["customer_id"])
            est, se = float(params[focal]), float(np.sqrt(cov.loc[focal, focal]))
            row.update(
                effect=est,
                ci_low=est - z * se,
                ci_high=est + z * se,
                p_value=float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else np.nan,
            )
        rows.append(row)
    out = pd.DataFrame(rows)
    cost = out.loc[out["comparison"] == "cost_of_problem", "effect"].iloc[0]
    rec = out.loc[out["comparison"] == "recovery", "effect"].iloc[0]
    cost_hi = out.loc[out["comparison"] == "cost_of_problem", "ci_high"].iloc[0]
    # a share of the cost only means something when the cost is clearly there
    out["share_recovered"] = rec / -cost if np.isfinite(cost) and cost_hi < 0 else np.nan
    out["horizon_months"] = horizon
    return out


# --------------------------------------------------------------------------------------
# Moments from the interaction log
# --------------------------------------------------------------------------------------

#: experience signals read from the log (``contrast`` -> what it compares)
LOG_SIGNALS: dict[str, str] = {
    "slow": "the touchpoint's slowest contacts (duration_min, top share) against the middle",
    "fast": "the touchpoint's fastest contacts (duration_min, bottom share) against the middle",
    "failed": "the step did not lead on (completed false) against steps that did",
    "channel_switch": "a dead end (completed false) after which the guest's next contact in "
    "the journey was at the same stage through another channel, against all other contacts",
}
#: above this many guests, the log moments are estimated on a seeded subsample of this many
#: guests (see :func:`log_moment_frame`)
LOG_MOMENT_MAX_CUSTOMERS = 200_000
#: contrasts whose significant fall in returns makes a pain point / rise a magic moment
BAD_CONTRASTS: tuple[str, ...] = ("bad", "slow", "failed", "channel_switch")
GOOD_CONTRASTS: tuple[str, ...] = ("very_good", "fast")
MOMENT_COLUMNS: tuple[str, ...] = (
    "source",
    "touchpoint",
    "contrast",
    "signal",
    "kind",
    "effect",
    "ci_low",
    "ci_high",
    "q",
    "n",
    "n_group",
    "raw",
    "p_value",
    "return_rate_middle",
    "stays_effect",
    "stays_ci_low",
    "stays_ci_high",
    "horizon_months",
    "score",
    "note",
)


def log_moment_frame(
    interactions: ibis.Table,
    stages: Sequence[str],
    *,
    customers: pd.DataFrame | None = None,
    horizon: int = 6,
    stay_stage: str = "check_in",
    session_gap_days: float = 7.0,
    keys: Sequence[str] | None = None,
    data_end: pd.Timestamp | str | None = None,
    journeys: Journeys | None = None,
    max_customers: int | None = LOG_MOMENT_MAX_CUSTOMERS,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per contact whose journey is followed for ``horizon`` months after it ended.

    A log of more than ``max_customers`` guests is analysed on a seeded random subsample of
    that many guests (all their contacts; ``None`` keeps everyone): a per-contact frame of a
    million guests' ten million contacts needs gigabytes and minutes, while the touchpoint
    effects estimated from a few hundred thousand contacts per touchpoint already have
    intervals of a fraction of a percentage point, and the full-log estimate lies well
    inside the subsample's interval. ``attrs["sample_note"]`` says so (empty without
    subsampling); :func:`log_moment_effects` carries it into each row's ``note``.

    Journeys are numbered by the rules of :func:`build_journeys` (in the engine). The
    outcome window starts the day after the journey's *last* contact, so the trip a contact
    belongs to never counts as its own return (a booking is not "followed" by the stay it
    booked): ``[end day + 1 day, end day + horizon months + 1 day)``, as in
    :func:`rox_helpers.loyalty.followup_table`. A stay is a completed ``stay_stage`` row.
    Only journeys whose whole window lies inside the data count (the data end is the day
    after the last stay unless ``data_end`` is given). Prior behaviour is measured before
    the journey *started*: stays and revenue in the 12 months before, the months of it
    observed, tenure (from ``customers.signup_date``, else the first contact in the log),
    and whether the guest had the app / was a community member then. Pass the
    :class:`Journeys` of the same log as ``journeys`` to reuse its numbering (its stages,
    session gap and keys then apply).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``unit_id`` (when the log has it), ``touchpoint`` (the stage where
        the log has no touchpoint), ``stage``, ``channel``, ``completed`` (1/0, missing when
        not recorded), ``minutes`` (``duration_min``), ``switched`` (1 when the contact was
        a dead end and the journey's next contact is at the same stage through another
        channel; without ``completed``, any such next contact), ``journey_start``,
        ``journey_end``, ``period`` (month the journey ended, yyyymm), ``prior_stays``,
        ``prior_revenue``, ``prior_months``, ``tenure_days``, ``app_user_at_response`` and
        ``community_member_at_response`` (status at the journey's start, when ``customers``
        has the dates), ``stays_<h>m`` and ``retained_<h>m``.
    """
    from rox_helpers.loyalty import DAYS_PER_MONTH, PRIOR_MONTHS, STATUS_DATES

    stages = [str(s) for s in stages]
    h = int(horizon)
    if journeys is not None and journeys.numbered is not None:
        t, part = journeys.numbered, list(journeys.info["keys"])
    else:
        t, part, _, _ = _numbered_contacts(
            interactions, stages, session_gap_days=session_gap_days, keys=keys, count=False
        )
    cols = set(interactions.columns)
    log = interactions.filter(interactions.customer_id.notnull(), interactions.timestamp.notnull())
    sample_note, keep = "", None
    if max_customers is not None:
        ids = t.select("customer_id").distinct().to_pyarrow()["customer_id"].to_pylist()
        if len(ids) > max_customers:
            ids.sort()  # code-point order: the subsample depends on the seed, not the engine
            pick = np.random.default_rng(seed).choice(len(ids), int(max_customers), replace=False)
            keep = ibis.memtable(pd.DataFrame({"customer_id": [ids[i] for i in np.sort(pick)]}))
            t = t.semi_join(keep, "customer_id")
            sample_note = (
                f"estimated on a seeded random subsample of {int(max_customers):,} of the "
                f"log's {len(ids):,} guests (all their contacts)"
            )
    jkey = [*part, "journey_no"]
    ow = ibis.window(group_by=jkey, order_by=t.seq)  # the numbering's total order
    t = t.mutate(
        next_idx=t.stage_idx.lead().over(ow),
        next_chan=t.chan.lead().over(ow),
        tp=t.touchpoint.cast("string") if "touchpoint" in cols else t.journey_stage,
        raw_done=t.completed.cast("float64") if "completed" in cols else ibis.null("float64"),
    ).cache()  # used twice below: number the journeys once
    is_stay = log.journey_stage == stay_stage
    if "completed" in cols:
        is_stay = is_stay & log.completed.fill_null(False)
    log = log.select(
        cid=log.customer_id,
        ts=log.timestamp,
        stay=is_stay.cast("int64"),
        rev=log.revenue.fill_null(0).cast(EXACT)
        if "revenue" in cols
        else ibis.literal(0).cast(EXACT),
    )
    span = log.aggregate(
        start=log.ts.min(), end=log.ts.max(), last_stay=log.ts.max(where=log.stay == 1)
    ).to_pandas()
    data_start = pd.Timestamp(span["start"].iloc[0]).normalize()
    if data_end is None:
        last = span["last_stay"].iloc[0]
        last = span["end"].iloc[0] if pd.isna(last) else last
        data_end = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    data_end = pd.Timestamp(data_end)
    if keep is not None:  # the span above is the whole log's; the rest, the sampled guests'
        log = log.filter(log.cid.isin(keep.customer_id))
    j = t.group_by(jkey).aggregate(j_start=t.timestamp.min(), j_end=t.timestamp.max())
    day = j.j_end.truncate("D")
    j = j.mutate(
        d0=day + ibis.interval(days=1),
        e=day + ibis.interval(months=h) + ibis.interval(days=1),
        p0=j.j_start - ibis.interval(months=PRIOR_MONTHS),
    )
    j = j.filter(j.e <= ibis.literal(data_end.to_pydatetime()))
    jl = j.inner_join(log, j.customer_id == log.cid).filter(lambda x: (x.ts >= x.p0) & (x.ts < x.e))
    before = jl.ts < jl.j_start
    after = (jl.ts >= jl.d0) & (jl.ts < jl.e)
    feats = jl.group_by(jkey).aggregate(
        prior_stays=jl.stay.sum(where=before).fill_null(0),
        prior_revenue=exact_sum(jl.rev, where=before).fill_null(0.0),
        stays=jl.stay.sum(where=after).fill_null(0),
    )
    seen = log.group_by("cid").aggregate(first_seen=log.ts.min())
    j = j.inner_join(feats, jkey).inner_join(seen, j.customer_id == seen.cid)
    c = t.inner_join(j, jkey)
    switched = (c.next_idx == c.stage_idx) & (c.next_chan != c.chan)
    if "completed" in cols:
        switched = switched & ~c.done
    keep = {
        "customer_id": c.customer_id,
        "touchpoint": c.tp,
        "stage": c.journey_stage,
        "channel": c.chan,
        "completed": c.raw_done,
        "minutes": c.minutes,
        "switched": switched.fill_null(False).cast("float64"),
        "journey_start": c.j_start,
        "journey_end": c.j_end,
        "p0": c.p0,
        "first_seen": c.first_seen,
        "prior_stays": c.prior_stays.cast("float64"),
        "prior_revenue": c.prior_revenue.cast("float64"),
        f"stays_{h}m": c.stays.cast("float64"),
    }
    if "unit_id" in part:
        keep["unit_id"] = c.unit_id
    out = c.select(**keep).to_pandas()
    out = out[out["touchpoint"].notna()]
    js = pd.to_datetime(out["journey_start"]).astype("datetime64[us]")
    start = pd.to_datetime(out["first_seen"]).astype("datetime64[us]")
    cu = pos = None
    if customers is not None and "customer_id" in customers.columns:
        cu = customers.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
        cu = cu.set_index(cu["customer_id"].astype("str"))
        # each contact's row of the customer table, found once (hashing Python strings:
        # pandas' string lookups of millions of contacts take seconds per column)
        pos = pd.Index(cu.index.astype(object)).get_indexer(
            out["customer_id"].astype("str").astype(object)
        )

    def of_customer(col: str) -> pd.Series:
        v = pd.to_datetime(cu[col]).astype("datetime64[us]").array.take(pos, allow_fill=True)
        return pd.Series(v, index=out.index)

    if cu is not None and "signup_date" in cu.columns:
        start = of_customer("signup_date").fillna(start)
    prior_from = np.maximum.reduce(
        [
            pd.to_datetime(out["p0"]).astype("datetime64[us]").to_numpy(),
            np.full(len(out), data_start.to_datetime64()).astype("datetime64[us]"),
            start.to_numpy(),
        ]
    )
    days = (js.to_numpy() - prior_from) / np.timedelta64(1, "D")
    out["prior_months"] = np.clip(days / DAYS_PER_MONTH, 1.0 / DAYS_PER_MONTH, None)
    out["tenure_days"] = ((js - start) / pd.Timedelta(days=1)).clip(lower=0).to_numpy()
    if cu is not None:
        for col, flag in STATUS_DATES.items():
            if col in cu.columns:
                out[flag] = (of_customer(col) <= js).astype("float64")
    end = pd.to_datetime(out["journey_end"])
    out["period"] = (end.dt.year * 100 + end.dt.month).astype("int64")  # yyyymm
    out[f"retained_{h}m"] = (out[f"stays_{h}m"] > 0).astype("float64")
    out = out.drop(columns=["p0", "first_seen"])
    # a total order: contacts equal in customer, journey, touchpoint and minutes (one failed,
    # one completed) came back in the engine's order. The other columns are the journey's
    # (fixed by customer, unit and journey start) or derived from these.
    keys = ("customer_id", "journey_start", "touchpoint", "minutes", "stage", "channel")
    keys += ("completed", "switched", "unit_id")
    out = out.sort_values([c for c in keys if c in out], ignore_index=True)
    out.attrs = {
        "data_start": data_start.isoformat(),
        "data_end": data_end.isoformat(),
        "horizon": h,
        "sample_note": sample_note,
    }
    return out


def _ols_cluster(
    Y: np.ndarray, X: np.ndarray, codes: np.ndarray, focal: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """OLS of each column of ``Y`` on ``X``: the ``focal`` coefficient and its CR1
    cluster-robust standard error (statsmodels' ``cov_type="cluster"`` correction
    ``G/(G-1) (N-1)/(N-K)``), by a pseudo-inverse so collinear dummies do no harm.
    ``codes`` are the clusters as 0..G-1. Call under a BLAS thread limit (small matrices)."""
    n = X.shape[0]
    xtx = X.T @ X
    u, sv, vt = np.linalg.svd(xtx, hermitian=True)
    keep = sv > sv.max() * max(xtx.shape) * np.finfo("float64").eps
    k = int(keep.sum())
    bread = (vt[keep].T / sv[keep]) @ u[:, keep].T
    beta = bread @ (X.T @ Y)
    resid = Y - X @ beta
    a = X @ bread[focal]
    g = int(codes.max()) + 1 if len(codes) else 0
    corr = g / max(g - 1, 1) * (n - 1) / max(n - k, 1)
    se = np.array(
        [
            np.sqrt(corr * np.sum(np.bincount(codes, weights=a * resid[:, j], minlength=g) ** 2))
            for j in range(Y.shape[1])
        ]
    )
    return beta[focal], se


def _log_design(d: pd.DataFrame, unit_effects: bool, period_effects: bool) -> pd.DataFrame:
    covs = [_design(d)]
    for name, use in (("unit_id", unit_effects), ("period", period_effects)):
        if use and name in d.columns:
            covs.append(
                pd.get_dummies(d[name].astype("str"), prefix=name, drop_first=True, dtype="float64")
            )
    return pd.concat(covs, axis=1)


def _log_contrasts(
    g: pd.DataFrame, signals: Sequence[str], decile: float
) -> list[tuple[str, str, pd.Series, pd.Series]]:
    """(contrast, signal text, in-group mask, comparison mask) for one touchpoint."""
    out = []
    m = g["minutes"]
    if {"slow", "fast"} & set(signals) and m.notna().any():
        lo, hi = m.quantile(decile), m.quantile(1 - decile)
        middle = (m > lo) & (m < hi)
        if hi > lo:
            if "slow" in signals:
                text = f"slowest {decile:.0%} ({hi:.1f} min or more)"
                out.append(("slow", text, m >= hi, middle))
            if "fast" in signals:
                text = f"fastest {decile:.0%} ({lo:.1f} min or less)"
                out.append(("fast", text, m <= lo, middle))
    c = g["completed"]
    if "failed" in signals and c.notna().any():
        out.append(("failed", "dead end (step not completed)", c == 0, c == 1))
    if "channel_switch" in signals:
        out.append(
            (
                "channel_switch",
                "dead end, then the same stage through another channel",
                g["switched"] == 1,
                g["switched"] == 0,
            )
        )
    return out


_SCORE_OF = {
    "slow": "duration_min",
    "fast": "duration_min",
    "failed": "completed",
    "channel_switch": "channel",
}


def _log_touchpoint(
    tp: str,
    g: pd.DataFrame,
    signals: Sequence[str],
    decile: float,
    unit_effects: bool,
    period_effects: bool,
    min_base: int,
    h: int,
    z: float,
) -> list[dict]:
    """The contrasts of one touchpoint (see :func:`log_moment_effects`)."""
    contrasts = _log_contrasts(g, signals, decile)
    if not contrasts:
        return []
    y = g[[f"retained_{h}m", f"stays_{h}m"]].to_numpy(dtype="float64")
    covs_all: np.ndarray | None = None
    codes_all = pd.factorize(g["customer_id"].astype("str"))[0]
    rows = []
    for contrast, text, grp_s, ref_s in contrasts:
        grp = grp_s.fillna(False).to_numpy(dtype=bool)
        ref = ref_s.fillna(False).to_numpy(dtype=bool) & ~grp
        n_group, n_ref = int(grp.sum()), int(ref.sum())
        row = {
            "touchpoint": tp,
            "contrast": contrast,
            "signal": text,
            "score": _SCORE_OF[contrast],
            "n": n_group + n_ref,
            "n_group": n_group,
            "return_rate_middle": y[ref, 0].mean() if n_ref else np.nan,
            "note": "",
        }
        if n_group < min_base or n_ref < min_base:
            row["note"] = f"not tested: fewer than {min_base} contacts in a group"
            rows.append(row)
            continue
        row["raw"] = y[grp, 0].mean() - row["return_rate_middle"]
        if covs_all is None:
            covs_all = _log_design(g, unit_effects, period_effects).to_numpy(dtype="float64")
        sub = grp | ref
        covs = covs_all[sub]
        covs = covs[:, covs.std(axis=0) > 0]
        X = np.column_stack([np.ones(int(sub.sum())), grp[sub].astype("float64"), covs])
        codes = pd.factorize(codes_all[sub])[0]
        est, se = _ols_cluster(y[sub], X, codes)
        row.update(
            effect=est[0],
            ci_low=est[0] - z * se[0],
            ci_high=est[0] + z * se[0],
            p_value=float(2 * stats.norm.sf(abs(est[0]) / se[0])) if se[0] > 0 else np.nan,
            stays_effect=est[1],
            stays_ci_low=est[1] - z * se[1],
            stays_ci_high=est[1] + z * se[1],
        )
        rows.append(row)
    return rows


def log_moment_effects(
    frame: pd.DataFrame,
    *,
    horizon: int = 6,
    decile: float = 0.1,
    signals: Sequence[str] = tuple(LOG_SIGNALS),
    touchpoints: Sequence[str] | None = None,
    unit_effects: bool = True,
    period_effects: bool = True,
    min_base: int = 30,
    alpha: float = 0.05,
    level: float = 0.95,
) -> pd.DataFrame:
    """Magic moments and pain points per touchpoint from experience signals in the log.

    Per touchpoint and signal (:data:`LOG_SIGNALS`), contacts with the signal are compared
    with the comparison contacts on the guest's return after the journey ended (a stay
    within ``horizon`` months; and the number of stays in the window), by a linear
    probability model holding prior behaviour constant (:data:`MOMENT_COVARIATES`, measured
    before the journey began), with hotel fixed effects (``unit_effects``: slow desks may
    sit in weaker hotels) and fixed effects of the month the journey ended
    (``period_effects``: season), and customer-clustered (CR1) standard errors.
    Benjamini-Hochberg runs over every touchpoint x signal tested. A **pain point** is a
    bad signal (slow, failed, channel switch) followed by significantly fewer returns; a
    **magic moment** a very good one (fast) followed by significantly more. Where time
    spent is the value (a long dinner), a "slow" contact is not a bad experience: read the
    signal before the verdict (``touchpoints`` restricts the analysis).

    Parameters
    ----------
    frame : pandas.DataFrame
        :func:`log_moment_frame` for the same ``horizon``.
    decile : float, default=0.1
        The share of a touchpoint's contacts that is "slowest" (and "fastest"); the middle
        is strictly between the two cut-offs.
    min_base : int, default=30
        A contrast needs this many contacts in each of its two groups.

    Returns
    -------
    pandas.DataFrame
        One row per touchpoint x signal, with the columns of :func:`moment_effects`
        (``source`` ``"interactions"``; ``score`` names the log column read) plus
        ``stays_effect`` / ``stays_ci_low`` / ``stays_ci_high``, the adjusted difference
        in stays within the window.
    """
    from threadpoolctl import threadpool_limits

    h = int(horizon)
    y_ret, y_stays = f"retained_{h}m", f"stays_{h}m"
    missing = [c for c in ("touchpoint", "customer_id", y_ret, y_stays) if c not in frame]
    if missing:
        raise DataValidationError(
            f"the log moments frame lacks {', '.join(missing)}",
            file="interactions",
            column=missing[0],
            rule=f"contacts followed for {h} months (log_moment_frame with the same horizon)",
            fix="Build the frame with journey.log_moment_frame(..., horizon=h).",
        )
    unknown = set(signals) - set(LOG_SIGNALS)
    if unknown:
        raise ValueError(f"unknown log signal(s) {sorted(unknown)}; use {sorted(LOG_SIGNALS)}")
    d = frame[frame[y_ret].notna()]
    if touchpoints is not None:
        d = d[d["touchpoint"].isin(list(touchpoints))]
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for tp, g in d.groupby("touchpoint", sort=True):
            rows += _log_touchpoint(
                tp, g, signals, decile, unit_effects, period_effects, min_base, h, z
            )
    out = pd.DataFrame(rows).reindex(columns=list(MOMENT_COLUMNS))
    out["source"] = "interactions"
    out["horizon_months"] = h
    if out.empty:
        return out
    out["q"] = benjamini_hochberg(out["p_value"])
    out["kind"] = _moment_kind(out, alpha)
    out["note"] = out["note"].fillna("")
    sample_note = frame.attrs.get("sample_note", "")
    if sample_note:
        out["note"] = [f"{n}; {sample_note}" if n else sample_note for n in out["note"]]
    out.attrs["sample_note"] = sample_note
    return out.reset_index(drop=True)


def _moment_kind(out: pd.DataFrame, alpha: float) -> np.ndarray:
    sig = out["q"] < alpha
    return np.select(
        [
            sig & out["contrast"].isin(GOOD_CONTRASTS) & (out["effect"] > 0),
            sig & out["contrast"].isin(BAD_CONTRASTS) & (out["effect"] < 0),
        ],
        ["magic", "pain"],
        "none",
    )


def interaction_moments(
    interactions: ibis.Table,
    stages: Sequence[str],
    *,
    customers: pd.DataFrame | None = None,
    horizon: int = 6,
    stay_stage: str = "check_in",
    session_gap_days: float = 7.0,
    data_end: pd.Timestamp | str | None = None,
    journeys: Journeys | None = None,
    max_customers: int | None = LOG_MOMENT_MAX_CUSTOMERS,
    seed: int = 0,
    **kwargs,
) -> pd.DataFrame:
    """:func:`log_moment_frame` then :func:`log_moment_effects` (``kwargs`` go to the latter;
    a log of more than ``max_customers`` guests is analysed on a seeded subsample of them,
    see :func:`log_moment_frame`)."""
    frame = log_moment_frame(
        interactions,
        stages,
        customers=customers,
        horizon=horizon,
        stay_stage=stay_stage,
        session_gap_days=session_gap_days,
        data_end=data_end,
        journeys=journeys,
        max_customers=max_customers,
        seed=seed,
    )
    return log_moment_effects(frame, horizon=horizon, **kwargs)


def combine_moments(*frames: pd.DataFrame | None) -> pd.DataFrame:
    """Survey and log moments in one table (``journey_moments``), in :data:`MOMENT_COLUMNS`
    order; each source keeps its own Benjamini-Hochberg family. Rows without a ``source``
    are survey rows (tables saved before the log moments existed)."""
    parts = []
    for f in frames:
        if f is None or not len(f):
            continue
        f = f.copy()
        if "source" not in f:
            f["source"] = "survey"
        parts.append(f.reindex(columns=list(MOMENT_COLUMNS)))
    if not parts:
        return pd.DataFrame(columns=list(MOMENT_COLUMNS))
    with warnings.catch_warnings():  # all-missing columns (stays effects of survey rows)
        warnings.simplefilter("ignore", FutureWarning)
        out = pd.concat(parts, ignore_index=True)
    out["note"] = out["note"].fillna("")
    return out


# --------------------------------------------------------------------------------------
# Comment language and themes
# --------------------------------------------------------------------------------------


def _vocab(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: frequent function words (and a few hotel words) per language; a comment's language is
#: the one whose words (and accented letters) it uses most
LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    "en": _vocab(
        "the and was were is are very not no to of in at for with we our my it this that "
        "but so too would will again staff room stay hotel great good bad nice lovely "
        "really all had have be from they there on"
    ),
    "fr": _vocab(
        "le la les un une des et est était très pas de du au aux à avec pour nous vous "
        "mais trop bien chambre personnel séjour accueil propre sale reviendrons plaisir "
        "enregistrement attente merci hôtel petit déjeuner"
    ),
    "de": _vocab(
        "der die das ein eine und ist war sehr nicht kein keine zu mit für wir uns aber "
        "auch zimmer personal aufenthalt sauber schmutzig freundlich unfreundlich gerne "
        "wieder leider beim ging schnell hotel frühstück danke"
    ),
    "es": _vocab(
        "el la los las un una y es era muy no de del con para nosotros pero habitación "
        "personal estancia limpia sucia gracias desayuno volveremos"
    ),
    "it": _vocab(
        "il lo la gli le un una e è era molto non di del con per noi ma camera personale "
        "soggiorno pulita sporca grazie colazione torneremo"
    ),
    "nl": _vocab(
        "de het een en is was erg zeer niet geen met voor wij ons maar kamer personeel "
        "verblijf schoon vies vriendelijk bedankt ontbijt"
    ),
}
LANGUAGE_LETTERS: dict[str, str] = {"fr": "éèêàçùâîôœ", "de": "äöüß", "es": "ñ¿¡áíóú"}
#: words, hyphenated compounds ("check-in") kept whole
_WORD_RE = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*", re.UNICODE)
_PLACEHOLDER_RE = re.compile(r"\[(?:email|phone|name)\]", re.IGNORECASE)


def detect_language(texts: pd.Series) -> pd.Series:
    """The language of each comment by a vote of frequent words and accented letters.

    Each word found in a language's list (:data:`LANGUAGE_WORDS`) scores one, each letter
    typical of it (:data:`LANGUAGE_LETTERS`) half; the best score wins, ``""`` when nothing
    scores (a comment like "OK!" is not set aside). Placeholders left by the privacy scrub
    (``[name]``) are ignored. Short comments in a language without accents can be missed:
    a vote, not a model.
    """
    # comments repeat (short ones especially): each distinct text is scored once
    codes, uniques = pd.factorize(texts.fillna("").astype("str"))
    out = []
    for text in uniques:
        low = _PLACEHOLDER_RE.sub(" ", text.lower())
        words = [w.split("'")[-1].split("’")[-1] for w in _WORD_RE.findall(low)]
        best, best_score = "", 0.0
        for lang, vocab in LANGUAGE_WORDS.items():
            sc = sum(w in vocab for w in words)
            sc += 0.5 * sum(ch in LANGUAGE_LETTERS.get(lang, "") for ch in low)
            if sc > best_score:
                best, best_score = lang, sc
        out.append(best)
    return pd.Series(np.asarray(out, dtype=object)[codes], index=texts.index, dtype="str")


THEME_COLUMNS = (
    "theme",
    "source",
    "top_terms",
    "n",
    "share",
    "nps_raisers",
    "nps_rest",
    "nps_difference",
    "ci_low",
    "ci_high",
    "p_value",
    "attributes",
    "examples",
    "reliable",
    "q_value",
    "tone",
)


@dataclass
class ThemeResult:
    """Themes of the comments.

    Attributes
    ----------
    themes : pandas.DataFrame
        One row per theme: ``theme``, ``source`` (``lexicon`` or ``nmf``), ``top_terms``,
        ``n`` (comments raising it), ``share``, ``nps_raisers``, ``nps_rest``,
        ``nps_difference``, ``ci_low``, ``ci_high``, ``p_value``, ``q_value``, ``tone``
        (``pain``, ``magic`` or ``neutral``), ``attributes`` (the ratings that differ most
        between raisers and the rest), ``examples`` (up to three short comments, joined by
        `` | ``), ``reliable``.
    assignments : pandas.DataFrame
        ``response_id`` and one 0/1 column per theme.
    languages : pandas.DataFrame
        ``language`` and ``comments``: how many comments each language had; the ones not
        in the configured language were set aside.
    n_comments : int
        Comments analysed (configured language, non-empty).
    n_set_aside : int
        Comments in another language, counted and left out.
    """

    themes: pd.DataFrame
    assignments: pd.DataFrame
    languages: pd.DataFrame
    n_comments: int
    n_set_aside: int


def _clean_comment(text: str) -> str:
    return _PLACEHOLDER_RE.sub(" ", text)


def _safe_example(text: str, limit: int) -> str | None:
    """A comment fit to show: short, no placeholders, and nothing the scrub would mask."""
    from rox_helpers.privacy import scrub_text

    if _PLACEHOLDER_RE.search(text) or len(text) > limit:
        return None
    again = scrub_text(pd.Series([text])).text.iloc[0]
    return text if again == text else None


def _lexicon_hits(texts: pd.Series, words: Sequence[str]) -> np.ndarray:
    pats = [re.escape(w.lower().strip()) for w in words if str(w).strip()]
    if not pats:
        return np.zeros(len(texts), dtype=bool)
    rx = re.compile(r"(?<!\w)(?:" + "|".join(pats) + r")(?!\w)")
    return texts.str.lower().str.contains(rx).to_numpy(dtype=bool)


def comment_themes(
    survey: pd.DataFrame,
    *,
    language: str = "en",
    n_themes: int = 8,
    lexicon: Mapping[str, Sequence[str]] | None = None,
    attributes: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    comment: str = "comment",
    score: str = "nps",
    min_base: int = 30,
    membership: float = 0.3,
    n_terms: int = 6,
    example_chars: int = 140,
    seed: int = 0,
    alpha: float = 0.05,
    level: float = 0.95,
) -> ThemeResult:
    """Themes in the free-text comments: TF-IDF + NMF, plus an editable lexicon.

    Parameters
    ----------
    survey : pandas.DataFrame
        Canonical ``cx_survey`` (comments already scrubbed of personal data on load).
    language : str, default="en"
        The configured language; comments detected as another are counted and set aside.
    n_themes : int, default=8
        NMF components (fewer if there are too few comments or terms).
    lexicon : mapping, optional
        Theme name -> words or phrases (``journey.themes``); a comment raises the theme when
        it contains one of them (whole words, any case).
    attributes : sequence of str
        Rated attribute columns to describe each theme with.
    membership : float, default=0.3
        A comment raises an NMF theme when its weight on it is at least this share of its
        largest weight (and positive).
    seed : int
        Seeds NMF (``random_state``; NNDSVDa initialisation is deterministic besides).

    Returns
    -------
    ThemeResult
    """
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    if comment not in survey.columns:
        raise DataValidationError(
            "the survey has no comment column",
            file="cx_survey",
            column=comment,
            rule="free-text comments",
            fix="Map the comment column of the survey in engagement.yml.",
        )
    labels = dict(labels or {})
    s = survey[survey[comment].notna()].copy()
    s[comment] = s[comment].astype("str").str.strip()
    s = s[s[comment].str.len() > 0]
    lang = detect_language(s[comment])
    keep = (lang == language) | (lang == "")
    langs = (
        lang.replace("", "(undetected)")
        .value_counts()
        .rename_axis("language")
        .reset_index(name="comments")
    )
    langs["set_aside"] = ~langs["language"].isin([language, "(undetected)"])
    n_aside = int((~keep).sum())
    s = s[keep]
    texts = s[comment].map(_clean_comment)
    member: dict[str, np.ndarray] = {}
    weight: dict[str, np.ndarray] = {}
    meta: dict[str, tuple[str, str]] = {}
    for name, words in (lexicon or {}).items():
        hits = _lexicon_hits(texts, words)
        member[name] = hits
        weight[name] = hits.astype("float64")
        meta[name] = ("lexicon", ", ".join(words))
    if len(s) >= max(2 * min_base, 10):
        stop = "english" if language == "en" else None
        vec = TfidfVectorizer(
            stop_words=stop,
            min_df=max(3, int(0.002 * len(s))),
            max_df=0.5,
            ngram_range=(1, 2),
            sublinear_tf=True,
        )
        try:
            X = vec.fit_transform(texts)
        except ValueError:  # no terms left
            X = None
        if X is not None and X.shape[1] >= 2:
            k = int(min(n_themes, X.shape[1] - 1, max(2, len(s) // min_base)))
            nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                W = nmf.fit_transform(X)
            terms = np.asarray(vec.get_feature_names_out())
            rowmax = W.max(axis=1, keepdims=True)
            for c in range(k):
                top = terms[np.argsort(-nmf.components_[c])[:n_terms]]
                name = " / ".join(top[:3])
                hits = (W[:, c] > 0) & (W[:, c] >= membership * rowmax[:, 0])
                member[name] = hits
                weight[name] = W[:, c]
                meta[name] = ("nmf", ", ".join(top))
    rows = []
    for name, hits in member.items():
        src, top_terms = meta[name]
        n = int(hits.sum())
        diff = nps_difference(s.loc[hits, score], s.loc[~hits, score], level) if score in s else {}
        atts = []
        for a in attributes:
            if a in s.columns and n:
                delta = s.loc[hits, a].mean() - s.loc[~hits, a].mean()
                if np.isfinite(delta):
                    atts.append((abs(delta), labels.get(a, a), delta))
        atts = sorted(atts, reverse=True)[:3]
        order = np.argsort(-weight[name], kind="stable")
        examples: list[str] = []
        tried: set[str] = set()  # comments repeat: check each distinct text once
        for i in order:
            if not hits[i] or len(examples) >= 3:
                if len(examples) >= 3:
                    break
                continue
            text = s[comment].iloc[i]
            if text in tried:
                continue
            tried.add(text)
            ex = _safe_example(text, example_chars)
            if ex and ex not in examples:
                examples.append(ex)
        rows.append(
            {
                "theme": name,
                "source": src,
                "top_terms": top_terms,
                "n": n,
                "share": n / len(s) if len(s) else np.nan,
                "nps_raisers": diff.get("nps_group", np.nan),
                "nps_rest": diff.get("nps_rest", np.nan),
                "nps_difference": diff.get("difference", np.nan),
                "ci_low": diff.get("ci_low", np.nan),
                "ci_high": diff.get("ci_high", np.nan),
                "p_value": diff.get("p_value", np.nan),
                "attributes": "; ".join(f"{lab} ({d:+.1f})" for _, lab, d in atts),
                "examples": " | ".join(examples),
                "reliable": n >= min_base,
            }
        )
    themes = pd.DataFrame(rows, columns=THEME_COLUMNS[:-2])
    themes["q_value"] = np.nan
    themes["tone"] = pd.Series(dtype="str")
    if len(themes):
        themes.loc[~themes["reliable"], "p_value"] = np.nan
        themes["q_value"] = benjamini_hochberg(themes["p_value"])
        sig = themes["q_value"] < alpha
        themes["tone"] = np.select(
            [sig & (themes["nps_difference"] < 0), sig & (themes["nps_difference"] > 0)],
            ["pain", "magic"],
            "neutral",
        )
        themes = themes.sort_values(["source", "n"], ascending=[True, False]).reset_index(drop=True)
    assignments = pd.DataFrame(
        {"response_id": s["response_id"].to_numpy() if "response_id" in s else s.index}
    )
    for name, hits in member.items():
        assignments[name] = hits.astype("int8")
    return ThemeResult(themes, assignments, langs, len(s), n_aside)


# --------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"


def _pp(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:+.1f} pp"


def _log_moments_finding(m: pd.DataFrame, step: str, chart: str = ""):
    from rox_helpers.artifacts import Finding, interval_text

    tested = m[m["q"].notna()]
    magic = tested[tested["kind"] == "magic"].sort_values("effect", ascending=False)
    pain = tested[tested["kind"] == "pain"].sort_values("effect")

    def line(r) -> str:
        return (
            f"{r.touchpoint}, {r.signal}: {_pp(r.effect)} return rate within "
            f"{r.horizon_months} months (95% CI {_pp(r.ci_low)} to {_pp(r.ci_high)}; q = "
            f"{r.q:.3g}; {int(r.n_group):,} of {int(r.n):,} contacts)"
        )

    ev = [f"Pain: {line(r)}" for r in pain.head(4).itertuples()]
    ev += [f"Magic: {line(r)}" for r in magic.head(4).itertuples()]
    if not ev and len(tested):
        ev.append("No touchpoint signal is significant after Benjamini-Hochberg; the closest:")
        ev += [line(r) for r in tested.sort_values("p_value").head(3).itertuples()]
    sampled = [n for n in tested["note"].dropna().astype("str") if "subsample" in n]
    # the figure the finding rests on: the strongest pain point, else magic moment, else the
    # signal closest to significance
    lead = next((d.iloc[0] for d in (pain, magic, tested.sort_values("p_value")) if len(d)), None)
    if sampled:
        ev.append("Bases: " + sampled[0].split("; ")[-1] + ".")
    return Finding(
        step=step,
        headline=(
            f"From the interaction log: {len(pain)} pain point(s) and {len(magic)} magic "
            f"moment(s) among {len(tested)} touchpoint signals tested "
            f"({tested['touchpoint'].nunique()} touchpoints)"
        ),
        evidence=ev or ["No touchpoint had a large enough base to test."],
        so_what="Signals the log records (time taken, dead ends, channel switches) are "
        "compared on the guest's return after the trip, holding prior behaviour, hotel and "
        "month constant; where time spent is the value (a dinner) a long contact is no bad "
        "experience. An interval spanning zero is too little evidence, not proof of no effect.",
        confidence="medium" if len(magic) + len(pain) else "low",
        chart=chart,
        evidence_kind="association",
        base=f"{int(tested.groupby('touchpoint')['n'].max().sum()):,} contacts at "
        f"{tested['touchpoint'].nunique():,} touchpoints"
        if len(tested)
        else f"{len(m):,} touchpoint signals, none testable",
        interval=""
        if lead is None
        else interval_text(
            lead["ci_low"],
            lead["ci_high"],
            _pp,
            of=f"{lead['touchpoint']}, {lead['signal']}: return rate",
        ),
        no_interval="no touchpoint had a large enough base to test" if lead is None else "",
    )


def journey_findings(
    *,
    funnel_overall: pd.DataFrame | None = None,
    leaks: pd.DataFrame | None = None,
    gaps: pd.DataFrame | None = None,
    moments: pd.DataFrame | None = None,
    pooled: pd.DataFrame | None = None,
    forgive: pd.DataFrame | None = None,
    themes: ThemeResult | None = None,
    currency: str = "EUR",
    step: str = "05",
    charts: Mapping[str, str] | None = None,
) -> list:
    """Findings of the journey step, from whichever parts could be computed.

    ``moments`` may hold both sources (:func:`combine_moments`): survey rows make the magic
    moments finding, ``source == "interactions"`` rows a finding of their own.
    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``funnel``, ``channels``, ``moments``,
    ``log_moments``, ``themes`` (see :func:`~rox_helpers.artifacts.chart_namer`).
    """
    from rox_helpers.artifacts import Finding, chart_namer, interval_text

    chart = chart_namer(charts, ("funnel", "channels", "moments", "log_moments", "themes"))

    out = []
    if funnel_overall is not None and len(funnel_overall) and leaks is not None:
        f = funnel_overall[funnel_overall["is_leak_stage"]]
        done = funnel_overall[~funnel_overall["is_leak_stage"]]
        reach_goal = float(done["share_reaching"].iloc[0]) if len(done) else np.nan
        ev = [
            f"{r.stage}: {r.drop_rate:.1%} stop here (95% CI {r.ci_low:.1%}-{r.ci_high:.1%}; "
            f"{int(r.reached):,} journeys reached it)"
            for r in f.itertuples()
            if r.stopped > 0
        ]
        top = leaks[leaks["by"] != "overall"].head(3) if (leaks["by"] != "overall").any() else leaks
        top = top.head(3)
        ev += [
            f"Leak {r.rank}: {r.stage} ({r.by} {r.group}): {int(r.stopped):,} journeys lost, "
            f"about {r.value_at_stake:,.0f} {currency} at stake"
            for r in top.itertuples()
        ]
        worst = f.sort_values("stopped", ascending=False).iloc[0] if len(f) else None
        out.append(
            Finding(
                step=step,
                headline=(
                    f"{_pct(reach_goal)} of journeys reach the goal; the biggest leak is at "
                    f"{worst['stage']} ({worst['drop_rate']:.1%} stop there)"
                    if worst is not None
                    else "Journey funnel"
                ),
                evidence=ev,
                so_what="Value at stake assumes a lost journey was worth an average completed "
                "one; fix the leaks with the most value first, and check the channel and "
                "segment cuts for where the drop-off is worst.",
                confidence="high",
                chart=chart("funnel"),
                evidence_kind="count",
                base=f"{int(funnel_overall['reached'].max()):,} journeys",
                # every journey of the log counted; the intervals in the evidence treat the
                # stop rates as rates of a process (the journeys still to come)
                no_interval="every journey in the log counted, not a sample",
            )
        )
    if gaps is not None and len(gaps):
        sig = gaps[gaps["significant"]]
        g0 = (sig if len(sig) else gaps.sort_values("gap", ascending=False)).iloc[0]
        ev = [
            f"{r.label}: best through {r.best_channel}, worst through {r.worst_channel}, a "
            f"gap of {r.gap:.2f} points (95% CI {r.ci_low:.2f} to {r.ci_high:.2f}; q = "
            f"{r.q_value:.3g})"
            for r in sig.head(5).itertuples()
        ]
        out.append(
            Finding(
                step=step,
                headline=f"{len(sig)} of {len(gaps)} experience measures differ by channel",
                evidence=ev or ["No channel gap is significant after Benjamini-Hochberg."],
                so_what="Omnichannel means the same experience whatever the channel: the "
                "largest gaps show which channel to bring up to the best one. Gaps are raw "
                "differences; channel users differ too.",
                confidence="medium",
                chart=chart("channels"),
                evidence_kind="association",
                base=f"{int(gaps['n'].max()):,} responses"
                if "n" in gaps
                else f"{len(gaps):,} measures over {int(gaps['n_channels'].max()):,} channels",
                interval=interval_text(
                    g0["ci_low"], g0["ci_high"], "{:.2f}", of=f"{g0['label']}: gap in points"
                ),
            )
        )
    log_moments = None
    if moments is not None and "source" in moments:
        log_moments = moments[moments["source"] == "interactions"]
        moments = moments[moments["source"] != "interactions"]
    if moments is not None and len(moments):
        tested = moments[moments["q"].notna()]
        magic = tested[tested["kind"] == "magic"].sort_values("effect", ascending=False)
        pain = tested[tested["kind"] == "pain"].sort_values("effect")
        # the figure the finding rests on: the first magic moment, else the first pain
        # point, else the contrast closest to significance
        m0 = next((d.iloc[0] for d in (magic, pain, tested.sort_values("p_value")) if len(d)), None)
        ev = [
            f"Magic: {r.touchpoint}: a very good experience, {_pp(r.effect)} return rate within "
            f"{r.horizon_months} months (95% CI {_pp(r.ci_low)} to {_pp(r.ci_high)}; q = "
            f"{r.q:.3g}; n = {r.n:,})"
            for r in magic.head(4).itertuples()
        ]
        ev += [
            f"Pain: {r.touchpoint}: a bad experience, {_pp(r.effect)} return rate (95% CI "
            f"{_pp(r.ci_low)} to {_pp(r.ci_high)}; q = {r.q:.3g}; n = {r.n:,})"
            for r in pain.head(4).itertuples()
        ]
        if pooled is not None and "effect" in pooled:
            ev += [
                f"All touchpoints together: a {'very good' if r.contrast == 'very_good' else 'bad'}"
                f" experience, {_pp(r.effect)} return rate (95% CI {_pp(r.ci_low)} to "
                f"{_pp(r.ci_high)}; n = {r.n:,})"
                for r in pooled.itertuples()
                if np.isfinite(r.effect)
            ]
        if forgive is not None and len(forgive):
            rec = forgive.set_index("comparison")
            if np.isfinite(rec.loc["recovery", "effect"]):
                ev.append(
                    "Forgiveness: after a problem, a very good touchpoint experience goes with "
                    f"{_pp(rec.loc['recovery', 'effect'])} return rate (95% CI "
                    f"{_pp(rec.loc['recovery', 'ci_low'])} to "
                    f"{_pp(rec.loc['recovery', 'ci_high'])}); a problem otherwise costs "
                    f"{_pp(rec.loc['cost_of_problem', 'effect'])}"
                )
        out.append(
            Finding(
                step=step,
                headline=(
                    f"{len(magic)} magic moment(s) and {len(pain)} pain point(s) among "
                    f"{tested['touchpoint'].nunique()} touchpoints tested"
                ),
                evidence=ev or ["No touchpoint contrast is significant after BH."],
                so_what="Invest where a very good moment brings guests back and remove the "
                "pain points first; effects hold prior behaviour constant but are "
                "observational, not experiments.",
                confidence="medium" if len(magic) + len(pain) else "low",
                chart=chart("moments"),
                evidence_kind="association",
                base=(
                    f"{int(pooled['n'].max()):,} respondents followed up"
                    if pooled is not None and "n" in pooled and len(pooled)
                    else f"{int(tested['n'].sum()):,} answers over the touchpoints tested"
                ),
                interval=""
                if m0 is None
                else interval_text(
                    m0["ci_low"],
                    m0["ci_high"],
                    _pp,
                    of=f"{m0['touchpoint']}, {m0['kind'] if m0['kind'] != 'none' else 'closest'}:"
                    " return rate",
                ),
                no_interval="no touchpoint had a large enough base to test" if m0 is None else "",
            )
        )
    if log_moments is not None and len(log_moments):
        out.append(_log_moments_finding(log_moments, step, chart("log_moments")))
    if themes is not None and len(themes.themes):
        th = themes.themes[themes.themes["reliable"]]
        pain = th[th["tone"] == "pain"].sort_values("nps_difference")
        good = th[th["tone"] == "magic"].sort_values("nps_difference", ascending=False)
        t0 = next((d.iloc[0] for d in (pain, good, th) if len(d)), None)
        ev = [
            f"{r.theme} ({r.source}): {r.n:,} comments, NPS {r.nps_raisers:.0f} vs "
            f"{r.nps_rest:.0f} for the rest ({r.nps_difference:+.0f}, 95% CI "
            f"{r.ci_low:+.0f} to {r.ci_high:+.0f})"
            for r in pd.concat([pain.head(3), good.head(3)]).itertuples()
        ]
        ev.append(
            f"{themes.n_comments:,} comments analysed; {themes.n_set_aside:,} in another "
            "language counted and set aside"
        )
        out.append(
            Finding(
                step=step,
                headline=(
                    f"What guests say: {len(pain)} theme(s) go with detractors, {len(good)} "
                    "with promoters"
                ),
                evidence=ev,
                so_what="Detractor themes name the pain points in the guests' words; promoter "
                "themes are candidate magic moments to protect.",
                confidence="medium",
                chart=chart("themes"),
                evidence_kind="association",
                base=f"{themes.n_comments:,} comments",
                interval=""
                if t0 is None
                else interval_text(
                    t0["ci_low"], t0["ci_high"], "{:+.0f}", of=f"{t0['theme']}: NPS difference"
                ),
                no_interval="no theme has a reliable base" if t0 is None else "",
            )
        )
    return out
