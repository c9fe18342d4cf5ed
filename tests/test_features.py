"""Interaction log in DuckDB: row rules, pseudonymised ids, behavioural features.

Features are checked against an independent pandas computation on the same data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from rox_helpers.data import load_engagement
from rox_helpers.features import features_frame


def _interactions(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stages = ["discover", "book", "check_in", "stay", "check_out"]
    channels = ["web", "app", "phone", "front_desk"]
    df = pd.DataFrame(
        {
            "guest_id": rng.choice(["C1", "C2"], n),
            "ts": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 300 * 24 * 60, n), unit="min"),
            "hotel": rng.choice(["H1", "H2"], n),
            "channel": rng.choice(channels, n),
            "journey_stage": rng.choice(stages, n),
            "touchpoint": rng.choice(["a", "b", "c", "d", "e", "f"], n),
            "completed": rng.random(n) < 0.8,
            "revenue": np.where(rng.random(n) < 0.3, rng.gamma(2, 60, n), 0.0).round(2),
            "duration_min": rng.gamma(2, 3, n).round(1),
        }
    )
    # planted bad rows: unknown hotel, negative duration, unknown customer, C4 = no consent
    bad = pd.DataFrame(
        {
            "guest_id": ["C1", "C2", "C77", "C4"],
            "ts": pd.to_datetime(["2025-02-01", "2025-02-02", "2025-02-03", "2025-02-04"]),
            "hotel": ["H99", "H1", "H1", "H1"],
            "channel": ["web"] * 4,
            "journey_stage": ["book"] * 4,
            "touchpoint": ["a"] * 4,
            "completed": [True] * 4,
            "revenue": [10.0] * 4,
            "duration_min": [1.0, -5.0, 1.0, 1.0],
        }
    )
    return pd.concat([df, bad], ignore_index=True)


@pytest.fixture(params=["parquet", "csv"])
def with_log(tiny, request):
    df = _interactions()
    if request.param == "parquet":
        df.to_parquet(tiny / "data" / "log.parquet", index=False)
        path = "data/log.parquet"
    else:
        df.assign(ts=df["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(
            tiny / "data" / "log.csv", index=False
        )
        path = "data/log.csv"
    cfg_path = tiny / "engagement.yml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["data"]["interactions"] = {
        "path": path,
        "columns": {"customer_id": "guest_id", "timestamp": "ts", "unit_id": "hotel"},
    }
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tiny, df


def test_interaction_rules_quarantine_and_consent(with_log):
    root, raw = with_log
    data = load_engagement(root)
    rep = data.reports["interactions"]
    assert rep.rows_read == len(raw)
    assert rep.rows_quarantined == 3
    assert rep.reasons["unit_id: unknown id (not in units.unit_id)"] == 1
    assert rep.reasons["duration_min: below 0"] == 1
    assert rep.reasons["customer_id: unknown id (not in customers.customer_id)"] == 1
    assert rep.rows_excluded_consent == 1  # C4
    q = data.interactions_quarantine.to_pandas()
    assert len(q) == 3 and q["reason"].str.len().gt(0).all()
    assert not q["customer_id"].astype("str").str.contains("C1|C2|C77", regex=True).any()
    assert rep.rows_valid == len(raw) - 4


def test_features_match_pandas_reference(with_log):
    root, raw = with_log
    data = load_engagement(root)
    feats = features_frame(
        data.interactions, customers=data.tables["customers"], digital_channels=["web", "app"]
    ).set_index("customer_id")
    assert all(i.startswith("C-") for i in feats.index)  # pseudonymised
    ids = data.tables["customers"].set_index("customer_id")
    # pseudonymised id of C1 is the one whose signup date is 2024-02-01
    c1 = ids.index[ids["signup_date"] == pd.Timestamp("2024-02-01")][0]
    ref = raw[(raw.guest_id == "C1") & (raw.hotel != "H99")]
    f = feats.loc[c1]
    assert f["n_interactions"] == len(ref)
    assert f["frequency"] == ref["ts"].dt.date.nunique()
    assert f["spend"] == pytest.approx(ref["revenue"].sum())
    assert f["purchases"] == ((ref["revenue"] > 0) & ref["completed"]).sum()
    assert f["digital_share"] == pytest.approx(ref["channel"].isin(["web", "app"]).mean())
    assert f["share_phone"] == pytest.approx((ref["channel"] == "phone").mean())
    assert f["stages_reached"] == ref["journey_stage"].nunique()
    assert f["touchpoints_used"] == ref["touchpoint"].nunique()
    assert f["completion_rate"] == pytest.approx(ref["completed"].mean())
    assert f["avg_duration_min"] == pytest.approx(ref["duration_min"].mean())
    reference_day = raw["ts"].max().normalize() + pd.Timedelta(days=1)
    assert f["recency_days"] == (reference_day - ref["ts"].max().normalize()).days
    assert f["tenure_days"] == (reference_day - pd.Timestamp("2024-02-01")).days
