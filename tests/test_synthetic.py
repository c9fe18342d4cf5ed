"""Tests of the synthetic hotel-chain generator (:mod:`rox_helpers.synthetic`).

Most checks re-estimate a planted quantity from the written files and compare it with the
ground truth, so each of them fails if the generator stops producing what it records.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from rox_helpers.synthetic import ATTRIBUTES, SampleSize, generate_sample

TINY = SampleSize(
    n_units=4, n_months=6, n_customers=600, n_interactions=5_000, n_responses=400, n_employees=120
)
SMALL = SampleSize.small()
ATT_COLS = [f"att_{a}" for a in ATTRIBUTES]


# ------------------------------------------------------------------------------------ fixtures
class Sample:
    """Lazily loaded files of one generated sample."""

    def __init__(self, path: Path, truth: dict) -> None:
        self.path = path
        self.truth = truth
        self._cache: dict[str, object] = {}

    def _get(self, key, loader):
        if key not in self._cache:
            self._cache[key] = loader()
        return self._cache[key]

    @property
    def customers(self) -> pd.DataFrame:
        return self._get(
            "customers",
            lambda: pd.read_csv(
                self.path / "customers.csv",
                sep=";",
                encoding="cp1252",
                dtype=str,
                keep_default_na=False,
            ),
        )

    @property
    def interactions(self) -> pd.DataFrame:
        return self._get("inter", lambda: pd.read_parquet(self.path / "interactions.parquet"))

    @property
    def survey(self) -> pd.DataFrame:
        return self._get("survey", lambda: pyreadstat.read_sav(self.path / "cx_survey.sav")[0])

    @property
    def employees(self) -> pd.DataFrame:
        return self._get(
            "emp",
            lambda: pd.read_csv(self.path / "employees.csv", dtype={"left_date": str}),
        )

    @property
    def units(self) -> pd.DataFrame:
        return self._get("units", lambda: pd.read_csv(self.path / "units.csv"))

    @property
    def network(self) -> pd.DataFrame:
        return self._get("net", lambda: pd.read_csv(self.path / "network.csv"))

    @property
    def segments(self) -> pd.DataFrame:
        return self._get("seg", lambda: pd.read_parquet(self.path / "customer_segments.parquet"))

    def clean_employees(self) -> pd.DataFrame:
        e = self.employees
        e = e[(e.enps <= 10) & e.hotel_code.isin(self.units.hotel_code)]
        return e.drop_duplicates(["emp_id", "month"])

    def clean_survey(self) -> pd.DataFrame:
        s = self.survey
        ok = s.q_recommend.between(0, 10) & s.q_satisfaction.between(1, 5)
        ok &= s.hotel_code.isin(self.units.hotel_code)
        return s[ok].drop_duplicates("resp_id")


def _make(tmp_path_factory, name: str, **kwargs) -> Sample:
    path = tmp_path_factory.mktemp(name)
    truth = generate_sample(path, **kwargs)
    return Sample(path, truth)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Sample:
    return _make(tmp_path_factory, "small", seed=7, size=SMALL)


@pytest.fixture(scope="module")
def small_feedback(tmp_path_factory) -> Sample:
    return _make(tmp_path_factory, "small_fb", seed=7, size=SMALL, feedback=True)


@pytest.fixture(scope="module")
def default(tmp_path_factory) -> Sample:
    return _make(tmp_path_factory, "default")


def _digests(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.iterdir())
        if p.is_file()
    }


# ------------------------------------------------------------------------------- determinism
def test_same_seed_gives_byte_identical_files(tmp_path):
    generate_sample(tmp_path / "a", seed=11, size=TINY)
    generate_sample(tmp_path / "b", seed=11, size=TINY)
    generate_sample(tmp_path / "c", seed=12, size=TINY)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert set(a) == {
        "customers.csv",
        "interactions.parquet",
        "cx_survey.sav",
        "employees.csv",
        "units.csv",
        "network.csv",
        "customer_segments.parquet",
        "ground_truth.json",
    }
    assert a == b
    differing = {k for k in a if a[k] != c[k]}
    assert differing == set(a), f"files unchanged by a new seed: {set(a) - differing}"


def test_returned_truth_equals_json(small):
    assert json.loads((small.path / "ground_truth.json").read_text("utf-8")) == small.truth
    assert small.truth["seed"] == 7
    assert small.truth["size"]["n_customers"] == SMALL.n_customers
    assert small.truth["feedback"] == {
        "enabled": False,
        "occupancy_to_pride": 0.0,
        "unit": small.truth["feedback"]["unit"],
    }


def test_sample_size_validation_and_scaling():
    s = SampleSize().scaled(2)
    assert (s.n_customers, s.n_interactions, s.n_responses, s.n_employees) == (
        60_000,
        600_000,
        30_000,
        6_000,
    )
    assert (s.n_units, s.n_months, s.start) == (40, 24, "2024-11-01")
    with pytest.raises(ValueError):
        SampleSize(n_customers=0)
    with pytest.raises(ValueError):
        SampleSize(start="not a date")
    with pytest.raises(ValueError):
        SampleSize().scaled(0)


# ---------------------------------------------------------------------------- file formats
def test_customers_csv_is_cp1252_with_expected_columns(small):
    raw = (small.path / "customers.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accented names are single cp1252 bytes
    c = small.customers
    assert list(c.columns) == [
        "guest_id",
        "full_name",
        "email",
        "phone",
        "joined",
        "home_region",
        "age_band",
        "loyalty_tier",
        "is_community_member",
        "community_join_date",
        "app_user",
        "app_install_date",
        "referred_by",
        "consent_analytics",
        "consent_marketing",
    ]
    assert c.full_name.str.contains(r"[^\x00-\x7f]").any()
    assert c.guest_id.str.fullmatch(r"G\d{7}").all()
    assert set(c.age_band) == {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert set(c.loyalty_tier) == {"Blue", "Silver", "Gold", "Platinum"}
    assert set(c.home_region) == {"North", "South", "East", "West", "Central", "International"}
    for flag, date in (("is_community_member", "community_join_date"), ("app_user", "app_install_date")):  # fmt: skip
        assert ((c[flag] == "Y") == (c[date] != "")).all()
        d = pd.to_datetime(c.loc[c[date] != "", date], format="%d/%m/%Y")
        assert d.notna().all()
    ref = c.referred_by[c.referred_by != ""]
    assert 0 < len(ref) < len(c) * 0.15 and ref.isin(c.guest_id).all()


def test_interactions_schema_and_journey(small):
    i = small.interactions
    assert list(i.columns) == [
        "guest_id",
        "ts",
        "hotel_code",
        "channel",
        "stage",
        "touchpoint",
        "completed",
        "revenue",
        "duration_min",
    ]
    assert str(i.ts.dtype).startswith("datetime64")
    assert i.completed.dtype == bool
    assert set(i.channel) <= {"web", "app", "phone", "front_desk"}
    assert set(i.stage) == {
        "discover",
        "book",
        "pre_arrival",
        "check_in",
        "stay",
        "check_out",
        "post_stay",
    }
    # each touchpoint belongs to exactly one stage and one channel
    assert (i.groupby("touchpoint")[["stage", "channel"]].nunique() == 1).all().all()
    assert i.ts.is_monotonic_increasing
    assert abs(len(i) / SMALL.n_interactions - 1) < 0.1
    # revenue mainly on book / stay rows
    rev = i.groupby("stage").revenue.sum()
    assert rev[["book", "stay"]].sum() / rev.sum() > 0.99
    # a stay reaches check-out: every check-in has one check-out of the same guest
    ci = i[i.stage == "check_in"].groupby("guest_id").size()
    co = i[i.stage == "check_out"].groupby("guest_id").size()
    assert ci.equals(co)
    # nothing happens before the window or before the guest signed up
    c = small.customers.drop_duplicates("guest_id").set_index("guest_id").joined
    joined = pd.to_datetime(i.guest_id.map(c), format="%d/%m/%Y", errors="coerce")
    assert (i.ts[joined.notna()] >= joined[joined.notna()]).all()
    assert i.ts.min() >= pd.Timestamp(SMALL.start)


def test_survey_sav_metadata(small):
    df, meta = pyreadstat.read_sav(small.path / "cx_survey.sav", user_missing=True)
    expected = [
        "resp_id",
        "guest_id",
        "hotel_code",
        "resp_date",
        "survey_type",
        "touchpoint",
        "channel",
        "trip_purpose",
        "q_recommend",
        "q_satisfaction",
        "q_effort",
        *ATT_COLS,
        "comment",
        "weight",
    ]
    assert list(df.columns) == expected
    for col in ATT_COLS:
        assert meta.missing_ranges[col] == [{"lo": 0.0, "hi": 0.0}, {"lo": 99.0, "hi": 99.0}]
        assert meta.variable_value_labels[col][99.0] == "Don't know"
        assert meta.variable_value_labels[col][0.0] == "Not applicable"
        assert len(meta.column_names_to_labels[col]) > 40
        share = df[col].isin([0, 99]).mean()
        assert 0.01 < share < 0.15, (col, share)
    assert meta.original_variable_types["resp_date"].startswith("DATE")
    assert set(df.survey_type) == {"relationship", "transactional"}
    assert (df.touchpoint[df.survey_type == "relationship"] == "").all()
    assert (df.touchpoint[df.survey_type == "transactional"] != "").all()
    assert 0.05 < (df.guest_id == "").mean() < 0.15
    assert abs(df.weight.mean() - 1) < 0.01 and df.weight.min() > 0
    assert 0.30 < (df.comment != "").mean() < 0.40
    # user-missing codes become NaN in the default read
    assert small.survey[ATT_COLS].isna().any().all()


def test_employee_panel_structure(small):
    e = small.employees.drop_duplicates(["emp_id", "month"])
    # repair the few planted unknown hotel codes from the employee's other rows
    valid = e.hotel_code.isin(small.units.hotel_code)
    home = e[valid].groupby("emp_id").hotel_code.first()
    e = e.assign(hotel_code=e.emp_id.map(home))
    # rows that cannot be repaired (a new hire's only row) are dropped with their month
    lost_months = set(e.month[e.hotel_code.isna()])
    assert len(lost_months) <= 2
    assert e.groupby("month").size().nunique() == 1  # total headcount is constant
    e = e[~e.month.isin(lost_months)]
    assert e.emp_id.str.fullmatch(r"E\d{5}").all()
    assert set(e.team) == {
        "front_desk",
        "housekeeping",
        "food_beverage",
        "maintenance",
        "management",
    }
    ok = e.enps <= 10
    assert e.enps[ok].between(0, 10).all()
    assert e.pride.between(1, 7).all() and e.engagement.between(1, 5).all()
    assert e.greet_by_name.between(0, 1).all() and e.first_contact_resolution.between(0, 1).all()
    # constant headcount per hotel: leavers are replaced by new ids
    hc = e.groupby(["hotel_code", "month"]).size().unstack()
    assert (hc.nunique(axis=1) == 1).all()
    months = sorted(e.month.unique())
    for m0, m1 in itertools.pairwise(months):
        left = set(e.emp_id[(e.month == m0) & (e.left == 1)])
        assert left and not left & set(e.emp_id[e.month == m1])
    assert ((e.left == 1) == e.left_date.notna()).all()
    # units.staff_turnover is the monthly leaver share
    t = e.groupby(["hotel_code", "month"]).left.mean().round(4).rename("t").reset_index()
    m = small.units.merge(t, on=["hotel_code", "month"])
    assert len(m) == len(small.units) - len(lost_months) * small.units.hotel_code.nunique()
    np.testing.assert_allclose(m.staff_turnover, m.t, atol=1e-4)


# ------------------------------------------------------------------ causal structure recovered
def test_driver_ranking_by_trip_purpose(small):
    s = small.clean_survey().dropna(subset=ATT_COLS)
    truth = small.truth["strongest_driver"]
    assert truth == {"business": "att_checkin_speed"[4:], "leisure": "cleanliness"}
    for purpose, expected in truth.items():
        d = s[s.trip_purpose == purpose]
        assert len(d) > 300
        x = np.c_[np.ones(len(d)), d[ATT_COLS].to_numpy()]
        coef = np.linalg.lstsq(x, d.q_recommend.to_numpy(), rcond=None)[0][1:]
        est = dict(zip(ATTRIBUTES, coef, strict=True))
        assert max(est, key=est.get) == expected, est
        # and close to the structural weight
        w = small.truth["driver_weights"][purpose][expected]
        assert abs(est[expected] - w) < 0.1


def test_attribute_halo_correlations(small):
    corr = small.clean_survey()[ATT_COLS].corr().to_numpy()
    pairs = corr[np.triu_indices(len(ATT_COLS), 1)]
    assert pairs.min() > 0.3 and pairs.max() < 0.7
    assert 0.4 < pairs.mean() < 0.6


def test_low_pride_employees_leave_more(small):
    e = small.clean_employees()
    q = pd.qcut(e.pride, 4, labels=False)
    rates = e.groupby(q).left.mean()
    assert rates.iloc[0] > 2 * rates.iloc[-1]
    fd = e[e.team == "front_desk"]
    low = fd.pride < fd.pride.median()
    assert fd.left[low].mean() > fd.left[~low].mean()


def test_pride_drives_behaviours(small):
    e = small.clean_employees()
    assert e.pride.corr(e.greet_by_name) > 0.3
    assert e.pride.corr(e.first_contact_resolution) > 0.3


def test_app_users_check_in_faster(small):
    ci = small.interactions[small.interactions.stage == "check_in"]
    app = small.customers.drop_duplicates("guest_id").set_index("guest_id").app_user
    d = ci.assign(app=ci.guest_id.map(app))
    means = d.groupby("app").duration_min.mean()
    assert means["Y"] < means["N"] - 1.0
    by_tp = ci.groupby("touchpoint").duration_min.mean()
    assert by_tp["mobile_checkin"] < 0.5 * by_tp["front_desk_checkin"]
    # mobile check-in only after the app was installed
    inst = small.customers.drop_duplicates("guest_id").set_index("guest_id").app_install_date
    mob = ci[ci.touchpoint == "mobile_checkin"]
    when = pd.to_datetime(mob.guest_id.map(inst), format="%d/%m/%Y")
    assert (mob.ts.dt.normalize() >= when).all()
    # and a faster check-in earns a better rating
    s = small.clean_survey()
    assert s.att_checkin_speed[s.touchpoint == "mobile_checkin"].mean() > (
        s.att_checkin_speed[s.touchpoint == "front_desk_checkin"].mean() + 0.5
    )


def test_consent_share(small):
    c = small.customers.drop_duplicates("guest_id")
    share = (c.consent_analytics == "Y").mean()
    assert 0.82 <= share <= 0.88
    assert share == pytest.approx(small.truth["consent_analytics"]["realised"], abs=1e-3)


def test_self_selection_inflates_naive_uplift(small):
    c = small.customers.drop_duplicates("guest_id").set_index("guest_id")
    stays = small.interactions[small.interactions.stage == "check_in"].groupby("guest_id").size()
    n = stays.reindex(c.index, fill_value=0)
    for flag, key in (("is_community_member", "community"), ("app_user", "app")):
        naive = n[c[flag] == "Y"].mean() / n[c[flag] == "N"].mean()
        true = small.truth["uplift"][key]["true_rate_ratio"]
        assert 1.0 < true < 1.2
        assert naive > 1.5 * true
        assert small.truth["uplift"][key]["naive_rate_ratio_ever_vs_never"] > 1.5 * true


def test_feedback_creates_reverse_causation(small, small_feedback):
    def within_slope(sample: Sample) -> float:
        e = sample.clean_employees()
        p = e.groupby(["hotel_code", "month"]).pride.mean().rename("pride").reset_index()
        u = sample.units.sort_values(["hotel_code", "month"]).copy()
        u["occ_lag"] = u.groupby("hotel_code").occupancy.shift(1)
        m = p.merge(u, on=["hotel_code", "month"]).dropna(subset=["occ_lag"])
        y = m.pride - m.groupby("hotel_code").pride.transform("mean")
        x = m.occ_lag - m.groupby("hotel_code").occ_lag.transform("mean")
        return float((x * y).sum() / (x * x).sum())

    assert small_feedback.truth["feedback"]["enabled"] is True
    size = small_feedback.truth["feedback"]["occupancy_to_pride"]  # per +10pp occupancy
    assert size > 0
    on, off = within_slope(small_feedback), within_slope(small)
    assert on > off + 1.5
    # the persistent hotel pride climate also ties pride to last month's occupancy (through
    # service and reputation) in both samples; the feedback adds its own slope on top
    assert abs((on - off) - size / 0.10) < 1.5, (on, off)


def test_segments_differ_in_behaviour_not_demographics(small):
    seg = small.segments
    assert len(seg) == SMALL.n_customers and seg.guest_id.is_unique
    assert 3 <= seg.true_segment.nunique() <= 5
    c = small.customers.drop_duplicates("guest_id").merge(seg, on="guest_id")
    stays = small.interactions[small.interactions.stage == "check_in"].groupby("guest_id").size()
    c["stays"] = c.guest_id.map(stays).fillna(0)
    freq = c.groupby("true_segment").stays.mean()
    assert freq.max() > 4 * freq.min()
    app = (c.app_user == "Y").groupby(c.true_segment).mean()
    assert app.max() - app.min() > 0.3
    # Cramer's V of segment x age band stays weak
    tab = pd.crosstab(c.true_segment, c.age_band).to_numpy()
    expected = tab.sum(1, keepdims=True) * tab.sum(0, keepdims=True) / tab.sum()
    chi2 = ((tab - expected) ** 2 / expected).sum()
    v = np.sqrt(chi2 / tab.sum() / (min(tab.shape) - 1))
    assert v < 0.15


# -------------------------------------------------------------------------- survey linkage
def test_responses_follow_a_real_stay(small):
    s = small.clean_survey()
    s = s[s.guest_id != ""].copy()
    s["resp_date"] = pd.to_datetime(s.resp_date)
    i = small.interactions
    co = i[i.stage == "check_out"][["guest_id", "hotel_code", "ts"]]
    m = s.merge(co, on=["guest_id", "hotel_code"])
    lag = (m.resp_date - m.ts.dt.normalize()).dt.days
    ok = m[(lag >= 0) & (lag <= 31)].resp_id.unique()
    # the few misses are interactions whose hotel_code was planted as unknown
    assert len(ok) >= 0.99 * len(s)
    tr = s[s.survey_type == "transactional"]
    seen = set(zip(i.guest_id, i.touchpoint, strict=True))
    hits = [(g, t) in seen for g, t in zip(tr.guest_id, tr.touchpoint, strict=True)]
    assert np.mean(hits) == 1.0


def test_comments_follow_ratings(small):
    s = small.clean_survey()
    slow = s[s.comment.str.contains("Waited ages at check-in", regex=False)]
    clean = s[s.comment.str.contains("Spotless room", regex=False)]
    assert len(slow) > 5 and len(clean) > 5
    assert (slow.att_checkin_speed <= 4).all()
    assert (clean.att_cleanliness >= 9).all()


def test_planted_pii_and_languages(small):
    s = small.survey.drop_duplicates("resp_id").set_index("resp_id")
    pii = small.truth["survey"]["planted_pii"]
    with_email = set(s.index[s.comment.str.contains(r"[\w.+-]+@[\w-]+\.[\w.]+", regex=True)])
    assert with_email == set(pii["email"]) and with_email
    phone_re = re.compile(r"(?:\+|\(0\)|\b0)[\d ()-]{9,}\d")
    with_phone = set(s.index[s.comment.str.contains(phone_re)])
    assert with_phone == set(pii["phone"]) and with_phone
    names = set(small.employees.name)
    assert pii["staff_name"]
    for rec in pii["staff_name"]:
        assert rec["name"] in s.comment[rec["resp_id"]] and rec["name"] in names
    foreign = small.truth["survey"]["foreign_language"]
    assert foreign and {f["language"] for f in foreign} <= {"de", "fr"}
    n_comments = (s.comment != "").sum()
    assert len(foreign) < 0.03 * n_comments
    german = re.compile(r"\b(?:Zimmer|Personal|Check-in ging|wieder|gewartet|enttäuschend)\b")
    for f in foreign:
        text = s.comment[f["resp_id"]]
        assert not re.search(r"\b(?:the|was|and)\b", text)
        if f["language"] == "de":
            assert german.search(text), text


# ------------------------------------------------------------------------------ bad rows
def test_planted_bad_rows_are_exactly_recorded(small):
    bad = small.truth["bad_rows"]
    units = set(small.units.hotel_code)

    c = small.customers
    unparseable = pd.to_datetime(c.joined, format="%d/%m/%Y", errors="coerce").isna()
    assert sorted(np.flatnonzero(unparseable)) == sorted(bad["customers.csv"]["unparseable_date"]["rows"])  # fmt: skip
    dup = c.guest_id.duplicated()
    assert sorted(np.flatnonzero(dup)) == sorted(bad["customers.csv"]["duplicate_id"]["rows"])
    assert sorted(c.guest_id[dup]) == sorted(bad["customers.csv"]["duplicate_id"]["guest_ids"])

    i = small.interactions
    unknown = ~i.hotel_code.isin(units)
    assert set(i.hotel_code[unknown]) == {small.truth["unknown_unit_code"]} == {"H99"}
    assert list(np.flatnonzero(unknown)) == bad["interactions.parquet"]["unknown_unit"]["rows"]

    s = small.survey
    oor = ~(s.q_recommend.between(0, 10) & s.q_satisfaction.between(1, 5))
    rec = bad["cx_survey.sav"]
    assert sorted(np.flatnonzero(oor)) == sorted(rec["out_of_range"]["rows"])
    assert set(s.q_recommend[oor]) - set(range(11)) <= {11, 12}
    assert sorted(np.flatnonzero(~s.hotel_code.isin(units))) == sorted(rec["unknown_unit"]["rows"])
    assert sorted(np.flatnonzero(s.resp_id.duplicated())) == sorted(rec["duplicate_id"]["rows"])

    e = small.employees
    rec = bad["employees.csv"]
    assert sorted(np.flatnonzero(e.enps > 10)) == sorted(rec["out_of_range"]["rows"])
    assert sorted(np.flatnonzero(~e.hotel_code.isin(units))) == sorted(rec["unknown_unit"]["rows"])
    dup = e.duplicated(["emp_id", "month"])
    assert sorted(np.flatnonzero(dup)) == sorted(rec["duplicate_id"]["rows"])

    # a few per table, about 0.3-0.5% of rows
    for name, kinds in bad.items():
        n_bad = sum(k["count"] for k in kinds.values())
        share = n_bad / small.truth["row_counts"][name]
        assert 0.003 <= share <= 0.005, (name, share)


def test_no_bad_rows_when_disabled(tmp_path):
    truth = generate_sample(tmp_path, seed=3, size=TINY, bad_rows=False)
    assert truth["bad_rows"] == {name: {} for name in truth["bad_rows"]}
    c = pd.read_csv(tmp_path / "customers.csv", sep=";", encoding="cp1252", dtype=str)
    assert c.guest_id.is_unique
    assert pd.to_datetime(c.joined, format="%d/%m/%Y", errors="coerce").notna().all()
    s = pyreadstat.read_sav(tmp_path / "cx_survey.sav")[0]
    assert s.resp_id.is_unique and s.q_recommend.max() <= 10


# ---------------------------------------------------------------------------- network
def test_influencers_have_highest_in_degree(small):
    net = small.network
    inf = small.truth["influencers"]
    e = small.employees.drop_duplicates(["emp_id", "month"])
    last = e[e.month == e.month.max()]
    assert 0.02 <= len(inf) / len(last) <= 0.04
    assert set(net.from_emp) | set(net.to_emp) <= set(last.emp_id)
    indeg = net.groupby("to_emp").size().sort_values(ascending=False, kind="stable")
    top = set(indeg.index[: len(inf)])
    assert len(top & set(inf)) >= 0.9 * len(inf)
    team = last.set_index("emp_id").team
    assert (team[inf] == "management").mean() < 0.3
    same_hotel = net.from_emp.map(last.set_index("emp_id").hotel_code) == net.to_emp.map(
        last.set_index("emp_id").hotel_code
    )
    assert 0.9 < same_hotel.mean() < 1.0


# ------------------------------------------------------------------------------ default size
def test_default_size_row_counts(default):
    d = SampleSize()
    rc = default.truth["row_counts"]
    assert rc["customers.csv"] == pytest.approx(d.n_customers, rel=0.01)
    assert rc["interactions.parquet"] == pytest.approx(d.n_interactions, rel=0.1)
    assert rc["cx_survey.sav"] == pytest.approx(d.n_responses, rel=0.01)
    assert rc["employees.csv"] == pytest.approx(d.n_employees * d.n_months, rel=0.05)
    assert rc["units.csv"] == d.n_units * d.n_months
    with open(default.path / "customers.csv", encoding="cp1252") as fh:
        assert sum(1 for _ in fh) == rc["customers.csv"] + 1
    sizes = {p.name: p.stat().st_size for p in default.path.iterdir()}
    assert 1e6 < sizes["customers.csv"] < 2e7
    assert 1e6 < sizes["interactions.parquet"] < 3e7
    assert 1e6 < sizes["cx_survey.sav"] < 3e7


def test_higher_nps_guests_return_more(default):
    """Promoters make more stays after responding than detractors, given earlier stays."""
    import statsmodels.formula.api as smf

    s = default.clean_survey()
    s = s[s.guest_id != ""].copy()
    s["rd"] = pd.to_datetime(s.resp_date)
    i = default.interactions
    ci = i[i.stage == "check_in"][["guest_id", "ts"]]
    m = s[["resp_id", "guest_id", "rd"]].merge(ci, on="guest_id")
    day = pd.Timedelta(days=1)
    m["after"] = (m.ts > m.rd) & (m.ts <= m.rd + 120 * day)
    m["before"] = (m.ts < m.rd - 30 * day) & (m.ts >= m.rd - 150 * day)
    counts = m.groupby("resp_id")[["after", "before"]].sum()
    d = s.set_index("resp_id").join(counts).fillna({"after": 0, "before": 0})
    d = d[d.rd < d.rd.max() - 120 * day]
    fit = smf.poisson(
        "after ~ q_recommend + np.log1p(before) + C(trip_purpose)", data=d.reset_index()
    ).fit(disp=0)
    b, se = fit.params["q_recommend"], fit.bse["q_recommend"]
    true = default.truth["causal_model"]["returns"]["log_rate_per_nps_point"]
    assert b / se > 3
    assert 0.3 * true < b < 1.5 * true
