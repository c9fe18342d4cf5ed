"""Influencers: planted informal leaders found, networkx references, privacy, referrals."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import pseudonym
from rox_helpers import influencers as inf
from rox_helpers.config import Privacy
from rox_helpers.errors import ConfigError


@pytest.fixture(scope="module")
def centrality(loaded):
    return inf.network_centrality(loaded.tables["network"], loaded.tables["employees"])


@pytest.fixture(scope="module")
def flags(centrality):
    return inf.find_influencers(centrality)


@pytest.fixture(scope="module")
def planted(sample, truth):
    return {pseudonym(sample, raw, "E-") for raw in truth["influencers"]}


@pytest.fixture(scope="module")
def referrals(loaded):
    from rox_helpers.features import features_frame

    customers = loaded.tables["customers"]
    features = features_frame(loaded.interactions, customers=customers)
    return inf.referral_outcomes(customers, features), features


def _edges(rows):
    return pd.DataFrame(rows, columns=["source", "target", "weight"]).astype(
        {"source": "string", "target": "string", "weight": "float64"}
    )


# ------------------------------------------------------------------ planted influencers
def test_planted_influencers_are_found(flags, planted):
    found = set(flags.loc[flags["influencer"], "employee_id"])
    hit = len(found & planted)
    assert hit / len(planted) >= 0.9  # recall
    assert hit / len(found) >= 0.8  # precision
    assert "robust z" in flags.attrs["rule"] and flags["rule"].nunique() == 1


def test_forced_share_takes_the_top_of_the_composite(centrality, planted):
    top = inf.find_influencers(centrality, share=0.03)
    assert top["influencer"].sum() == math.ceil(0.03 * len(centrality))
    assert (
        top.loc[top["influencer"], "composite"].min()
        >= top.loc[~top["influencer"], "composite"].max()
    )
    found = set(top.loc[top["influencer"], "employee_id"])
    assert len(found & planted) / len(planted) >= 0.8


def test_most_influencers_are_informal_leaders_as_planted(loaded, flags, planted):
    emp = loaded.tables["employees"]
    s = inf.influencer_summary(flags, emp, loaded.tables["network"])
    assert s.managers_among_influencers < 0.5
    latest = emp[emp["period"] == emp["period"].max()].drop_duplicates("employee_id")
    truth_share = inf.is_manager(latest[latest["employee_id"].isin(list(planted))]).mean()
    assert s.managers_among_influencers == pytest.approx(truth_share, abs=0.1)
    g = s.by_group.set_index("group")
    assert g.loc["all", "n_staff"] == latest["employee_id"].nunique()
    assert (
        g.loc["managers", "n_influencers"] + g.loc["non-managers", "n_influencers"]
        == (g.loc["all", "n_influencers"])
    )
    # "a few percent of staff influence most of the organisation"
    assert g.loc["all", "share_influencers"] < 0.06
    assert g.loc["all", "reach_two_steps"] > 0.5
    assert "%" in s.headline()


def test_reach_equals_a_breadth_first_search(loaded, flags):
    emp, net = loaded.tables["employees"], loaded.tables["network"]
    s = inf.influencer_summary(flags, emp, net)
    g = nx.from_pandas_edgelist(net, "source", "target", create_using=nx.DiGraph)
    influencers = list(flags.loc[flags["influencer"], "employee_id"])
    # walk the nominations backwards from the influencers: who reaches one in <= 2 steps
    dist = nx.multi_source_dijkstra_path_length(g.reverse(copy=False), influencers, cutoff=2)
    latest = emp[emp["period"] == emp["period"].max()].drop_duplicates("employee_id")
    latest = latest.assign(reached=latest["employee_id"].isin(list(dist)))
    unit = s.by_unit.set_index("unit_id")
    expected = latest.groupby("unit_id")["reached"].mean()
    shown = unit.loc[~unit["suppressed"], "reach_two_steps"]
    assert len(shown) > 0
    np.testing.assert_allclose(shown, expected.reindex(shown.index), rtol=0, atol=1e-12)
    assert (unit["reach_two_steps"] >= unit["reach_direct"]).all()


def test_small_unit_reach_is_hidden_with_a_complement():
    p = pd.Timestamp("2025-06-01")
    staff = [("A1", "A"), ("A2", "A"), ("A3", "A")] + [(f"B{i}", "B") for i in range(8)]
    staff += [(f"C{i}", "C") for i in range(12)]
    emp = pd.DataFrame(
        {
            "employee_id": [e for e, _ in staff],
            "unit_id": [u for _, u in staff],
            "period": p,
            "team": "front_desk",
            "role": "Receptionist",
        }
    )
    net = _edges([(e, f"{u}0" if u != "A" else "A1", 1.0) for e, u in staff if e[1] != "0"])
    flags = inf.find_influencers(inf.network_centrality(net, emp))
    s = inf.influencer_summary(flags, emp, net, anonymity_floor=5).by_unit.set_index("unit_id")
    assert s.loc["A", "suppressed"] and np.isnan(s.loc["A", "reach_two_steps"])
    assert np.isnan(s.loc["A", "n_influencers"])
    assert s.loc["B", "suppressed"]  # the next smallest, so A cannot be recomputed
    assert not s.loc["C", "suppressed"] and s.loc["C", "reach_two_steps"] == 1.0


def test_influencers_vs_rest_equals_welch_on_person_means(loaded, flags):
    emp = loaded.tables["employees"]
    out = inf.influencers_vs_rest(emp, flags, ("pride",)).set_index("measure").loc["pride"]
    base = emp[emp["employee_id"].isin(list(flags["employee_id"]))]
    person = base.groupby("employee_id")["pride"].mean().dropna()
    is_inf = person.index.isin(list(flags.loc[flags["influencer"], "employee_id"]))
    ref = stats.ttest_ind(person[is_inf], person[~is_inf], equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert out["n_influencers"] == is_inf.sum()
    assert out["difference"] == pytest.approx(person[is_inf].mean() - person[~is_inf].mean())
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    # the generator gives influencers no effect on pride: no large gap (SE is about 0.1)
    assert abs(out["difference"]) < 0.4


def test_influencers_vs_rest_hides_a_group_below_the_floor(loaded, flags):
    few = flags.assign(influencer=False)
    few.loc[few.index[:3], "influencer"] = True
    out = inf.influencers_vs_rest(loaded.tables["employees"], few, ("pride", "enps"))
    assert out["suppressed"].all()
    assert out[["mean_influencers", "mean_rest", "difference"]].isna().all().all()


# ------------------------------------------------------------------ unit x period measure
def test_unit_influencer_pride_respects_the_floor(loaded, flags):
    emp = loaded.tables["employees"]
    out = inf.unit_influencer_pride(emp, flags, anonymity_floor=5)
    assert len(out) > 0 and (out["n"] >= 5).all()
    assert list(out.columns) == ["unit_id", "period", "value", "n"]
    assert out["period"].str.fullmatch(r"\d{4}Q[1-4]").all()
    strict = inf.unit_influencer_pride(emp, flags, anonymity_floor=40)
    assert (strict["n"] >= 40).all() and len(strict) < len(out)
    # one cell recomputed by hand: person means in the quarter, weighted by in-strength
    cell = out.iloc[len(out) // 2]
    e = emp[(emp["unit_id"] == cell["unit_id"])]
    e = e[e["period"].dt.to_period("Q").astype("str") == cell["period"]]
    person = e.groupby("employee_id")["pride"].mean().dropna()
    w = flags.set_index("employee_id")["in_strength"].reindex(person.index).fillna(0)
    assert cell["n"] == (w > 0).sum()
    assert cell["value"] == pytest.approx(np.average(person, weights=w))


def test_unit_influencer_pride_circle_respects_the_floor(loaded, flags):
    out = inf.unit_influencer_pride(
        loaded.tables["employees"], flags, how="circle", network=loaded.tables["network"]
    )
    assert len(out) > 0 and (out["n"] >= 5).all()
    assert "nominated" in out.attrs["definition"]


def test_one_dominant_influencer_is_not_published():
    p = pd.Timestamp("2025-01-01")
    emp = pd.DataFrame(
        {
            "employee_id": [f"E{i}" for i in range(6)],
            "unit_id": "H1",
            "period": p,
            "pride": [6.0, 3.0, 3.0, 4.0, 4.0, 5.0],
        }
    )
    cent = pd.DataFrame({"employee_id": emp["employee_id"], "in_strength": [50.0] + [2.0] * 5})
    assert inf.unit_influencer_pride(emp, cent).empty
    even = cent.assign(in_strength=[3.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    out = inf.unit_influencer_pride(emp, even)
    assert out["n"].tolist() == [6]
    assert out["value"].iloc[0] == pytest.approx(
        np.average(emp["pride"], weights=[3, 2, 2, 2, 2, 2])
    )


# ------------------------------------------------------------------ display privacy
def test_labels_hide_ids_by_default(flags):
    labels = inf.influencer_labels(flags, Privacy())
    assert len(labels) == flags["influencer"].sum()
    assert "employee_id" not in labels.columns
    cells = labels.astype("string").to_numpy().ravel()
    assert not any(str(v).startswith("E-") for v in cells)
    for _, g in labels.groupby("unit_id"):
        assert g["label"].tolist() == [f"Influencer {k}" for k in range(1, len(g) + 1)]
    assert inf.naming_record(Privacy()) == {"named": False, "legal_basis": None}


def test_naming_without_a_legal_basis_is_a_config_error(flags):
    from pydantic import ValidationError

    # engagement.yml is refused when it asks for names without a basis ...
    with pytest.raises(ValidationError, match="legal_basis_for_naming"):
        Privacy(name_influencers=True)
    with pytest.raises(ValidationError, match="legal_basis_for_naming"):
        Privacy(name_influencers=True, legal_basis_for_naming="  ")
    # ... and the labels refuse it too, whatever built the settings
    with pytest.raises(ConfigError) as err:
        inf.influencer_labels(flags, Privacy.model_construct(name_influencers=True))
    assert err.value.file == "engagement.yml"
    assert err.value.column == "privacy.legal_basis_for_naming"
    assert "legal_basis_for_naming" in err.value.fix
    with pytest.raises(ConfigError):
        inf.naming_record(
            Privacy.model_construct(name_influencers=True, legal_basis_for_naming="  ")
        )
    basis = "legitimate interest, DPIA 2026-04"
    named = Privacy(name_influencers=True, legal_basis_for_naming=basis)
    labels = inf.influencer_labels(flags, named)
    assert set(labels["label"]) == set(flags.loc[flags["influencer"], "employee_id"])
    assert inf.naming_record(named) == {"named": True, "legal_basis": basis}


# ------------------------------------------------------------------ networkx references
def test_centrality_equals_networkx_on_a_small_graph():
    rows = [
        ("a", "b", 2),
        ("b", "c", 1),
        ("c", "a", 3),
        ("d", "a", 1),
        ("d", "c", 2),
        ("e", "d", 1),
        ("a", "e", 4),
        ("c", "b", 1),
        ("b", "a", 1),
    ]
    net = _edges(rows)
    out = inf.network_centrality(net).set_index("employee_id")
    g = nx.DiGraph()
    g.add_weighted_edges_from((s, t, 1 / w) for s, t, w in rows)
    btw = nx.betweenness_centrality(g, weight="weight")
    u = nx.Graph()
    for s, t, w in rows:
        u.add_edge(s, t, weight=u[s][t]["weight"] + w if u.has_edge(s, t) else w)
    eig = nx.eigenvector_centrality(u, weight="weight", tol=1e-12, max_iter=10_000)
    for v in "abcde":
        assert out.loc[v, "in_strength"] == sum(w for _, t, w in rows if t == v)
        assert out.loc[v, "in_degree"] == sum(1 for _, t, _ in rows if t == v)
        assert out.loc[v, "betweenness"] == pytest.approx(btw[v], abs=1e-12)
        assert out.loc[v, "eigenvector"] == pytest.approx(eig[v], abs=1e-8)
    assert out.attrs["betweenness_method"] == "exact"
    assert out["unit_id"].isna().all()


def test_disconnected_graph_is_handled_per_component():
    rows = [("a", "b", 1), ("b", "c", 2), ("c", "a", 1), ("x", "y", 1), ("y", "z", 1)]
    out = inf.network_centrality(_edges(rows)).set_index("employee_id")
    assert out["eigenvector_method"].iloc[0] == "eigenvector per component"
    assert np.linalg.norm(out["eigenvector"]) == pytest.approx(1.0)
    u = nx.Graph()
    u.add_weighted_edges_from(rows[:3])
    eig = nx.eigenvector_centrality_numpy(u, weight="weight")
    for v in "abc":  # each component keeps its own vector, scaled by sqrt(3 / 6)
        assert out.loc[v, "eigenvector"] == pytest.approx(eig[v] * math.sqrt(0.5), abs=1e-9)


def test_an_obvious_star_hub_is_the_only_influencer():
    leaves = [f"L{i:02d}" for i in range(12)]
    rows = [(leaf, "hub", 1.0) for leaf in leaves]
    rows += [(a, b, 1.0) for a, b in zip(leaves, leaves[1:] + leaves[:1], strict=True)]
    rows += [("hub", "L00", 1.0)]
    emp = pd.DataFrame(
        {
            "employee_id": ["hub", *leaves],
            "unit_id": "H1",
            "period": pd.Timestamp("2025-01-01"),
            "role": "Waiter",
        }
    )
    flags = inf.find_influencers(inf.network_centrality(_edges(rows), emp))
    assert flags.loc[flags["influencer"], "employee_id"].tolist() == ["hub"]
    by_id = flags.set_index("employee_id")
    assert by_id["in_strength"].idxmax() == "hub" and by_id["eigenvector"].idxmax() == "hub"


def test_centrality_is_deterministic_whatever_the_row_order(loaded):
    net = loaded.tables["network"]
    emp = loaded.tables["employees"]
    shuffled = net.sample(frac=1.0, random_state=7).reset_index(drop=True)
    kw = {"betweenness_samples": 16, "betweenness_exact_max": 100}
    a = inf.network_centrality(net, emp, **kw)
    b = inf.network_centrality(shuffled, emp, **kw)
    assert a.attrs["betweenness_method"] == "sampled (k=16, seed=0)"
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(inf.find_influencers(a), inf.find_influencers(b))


# ------------------------------------------------------------------ customers
def test_referral_counts_match_the_raw_customers_file(sample, loaded, referrals):
    from rox_helpers.privacy import load_or_create_key, pseudonymise

    out, _ = referrals
    raw = pd.read_csv(
        sample / "data" / "customers.csv",
        sep=";",
        encoding="cp1252",
        dtype=str,
        keep_default_na=False,
    ).drop_duplicates("guest_id")
    key = load_or_create_key(sample)
    raw["cid"] = pseudonymise(raw["guest_id"], key, prefix="C-")
    kept = raw[raw["cid"].isin(set(loaded.tables["customers"]["customer_id"]))]
    assert len(kept) == out.count("customers")
    referred = kept[kept["referred_by"].str.strip() != ""]
    assert out.count("referred_customers") == len(referred)
    assert out.count("referrers") == referred["referred_by"].nunique()
    assert out.count("share_referred") == pytest.approx(len(referred) / len(kept))
    assert out.count("community_members") == (kept["is_community_member"] == "Y").sum()
    assert out.referrers["n_referred"].sum() <= len(referred)
    assert out.referrers["referrer_id"].isin(set(kept["cid"])).all()  # only consenting listed


def test_referral_and_community_comparisons(referrals):
    out, features = referrals
    r = out.referred_vs_rest.set_index("outcome")
    assert set(r.index) == set(inf.OUTCOMES)
    assert (r["ci_low"] <= r["adjusted_difference"]).all()
    assert (r["adjusted_difference"] <= r["ci_high"]).all()
    assert not r["suppressed"].any()
    assert out.referrers["referred_spend"].is_monotonic_decreasing
    assert out.referrers["rank"].tolist() == list(range(1, len(out.referrers) + 1))
    # per-year spend times the years observed adds back to the log's total spend
    o = inf.customer_outcomes(
        pd.DataFrame(
            {"customer_id": features["customer_id"], "signup_date": pd.NaT, "region": "x"}
        ),
        features,
    )
    total = (o["spend_per_year"] * o["observed_years"]).sum()
    assert total == pytest.approx(features["spend"].sum(), rel=1e-9)


def test_community_association_is_flagged_as_self_selection(referrals, truth):
    out, _ = referrals
    c = out.community_vs_rest.set_index("outcome").loc["frequency_per_year"]
    assert "self" in out.community_note and "causal" in out.community_note
    # members visit far more than the community's true effect would give them: selection
    assert c["mean_group"] / c["mean_rest"] > 1.5 * truth["uplift"]["community"]["true_rate_ratio"]


def test_small_customer_groups_are_suppressed():
    feats = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(40)],
            "frequency": np.arange(40) % 5,
            "purchases": np.arange(40) % 3,
            "spend": np.arange(40) * 10.0,
            "first_seen": pd.Timestamp("2025-01-01"),
            "last_seen": pd.Timestamp("2025-12-01"),
            "recency_days": 31,
        }
    )
    cust = pd.DataFrame(
        {
            "customer_id": feats["customer_id"],
            "signup_date": pd.Timestamp("2024-06-01"),
            "region": "North",
            "referred_by": ["C0", "C1"] + [pd.NA] * 38,
            "is_community_member": [True] * 10 + [False] * 30,
        }
    )
    out = inf.referral_outcomes(cust, feats)
    assert out.referred_vs_rest["suppressed"].all()
    assert out.referred_vs_rest["adjusted_difference"].isna().all()
    comm = out.community_vs_rest
    assert not comm["suppressed"].any() and not comm["reliable"].any()  # 10 < 30: indicative


@pytest.mark.parametrize("k", [None, 7, 40])
def test_betweenness_equals_networkx(k):
    """igraph's Brandes with networkx's sampling and scaling gives networkx's betweenness, on
    a random directed graph whose path lengths are integers (no rounding to break ties)."""
    import networkx as nx

    from rox_helpers.influencers import betweenness_centrality

    rng = np.random.default_rng(3)
    n, m = 60, 240
    s, t = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = s != t
    s, t = s[keep], t[keep]
    d = rng.integers(1, 4, len(s)).astype(float)  # many equal-length paths
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for a, b, w in zip(s, t, d, strict=True):
        g.add_edge(int(a), int(b), d=w)  # a repeated pair keeps its last length, as below
    last = {(int(a), int(b)): w for a, b, w in zip(s, t, d, strict=True)}
    s2, t2 = np.array([a for a, _ in last]), np.array([b for _, b in last])
    ref = nx.betweenness_centrality(g, k=k, weight="d", normalized=True, seed=11)
    got = betweenness_centrality(n, s2, t2, np.array(list(last.values())), k=k, seed=11)
    np.testing.assert_allclose(got, [ref[v] for v in range(n)], rtol=1e-12, atol=1e-15)


def test_betweenness_counts_ties_of_exact_arithmetic():
    """Ten steps of 1/10 and one step of 1 are one tie, though in floating point the ten add
    up to 0.9999999999999999: the two routes share the betweenness, as networkx gives them on
    the same graph with integer lengths (x 10)."""
    import networkx as nx

    from rox_helpers.influencers import betweenness_centrality

    # 0 -> 1 directly (length 1) or 0 -> 2 -> 3 -> ... -> 10 -> 1 (ten steps of 1/10)
    route = [0, *range(2, 11), 1]
    s = np.array([0, *route[:-1]])
    t = np.array([1, *route[1:]])
    frac = np.array([1.0] + [0.1] * 10)
    total = 0.0
    for x in frac[1:]:
        total += x
    assert total != 1.0  # the rounding that would break the tie
    g = nx.DiGraph()
    for a, b, w in zip(s, t, np.rint(frac * 10), strict=True):
        g.add_edge(int(a), int(b), d=w)
    ref = nx.betweenness_centrality(g, weight="d", normalized=True)
    got = betweenness_centrality(11, s, t, frac)
    np.testing.assert_allclose(got, [ref[v] for v in range(11)], rtol=1e-12)
    assert got[5] > 0  # the middle of the long route carries half of the 0 -> 1 paths
