"""engagement.yml: good files load, bad ones give every problem with key, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from rox_helpers.config import load_engagement_config, parse_engagement_config, validate_slug
from rox_helpers.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
MINIMAL = """
client: {name: Acme}
data:
  cx_survey: {path: data/survey.csv, columns: {nps: q1}}
"""


def test_sample_config_loads():
    cfg = load_engagement_config(REPO / "engagements" / "sample")
    assert cfg.client.name == "Harbour & Pine Hotels"
    assert set(cfg.data.declared()) == {
        "customers",
        "interactions",
        "cx_survey",
        "employees",
        "units",
        "network",
    }
    elements = {e for e, _ in cfg.measures()}
    assert elements == {"pride", "influencers", "behaviours", "values", "results"}
    assert cfg.privacy.reliability_base == 30 and cfg.privacy.anonymity_floor == 5


def test_minimal_config_has_defaults():
    cfg = parse_engagement_config(MINIMAL)
    assert cfg.data.cx_survey.resolved_format() == "csv"
    assert cfg.privacy.identifier_action == "drop"  # data minimisation by default
    assert cfg.segmentation.k_min == 2


def _problems(text: str) -> list:
    with pytest.raises(ConfigError) as exc:
        parse_engagement_config(text, file="engagements/x/engagement.yml")
    assert exc.value.file == "engagements/x/engagement.yml"
    return exc.value.problems


def test_unknown_keys_suggest_the_nearest_and_cite_lines():
    problems = _problems(
        """
client: {name: Acme}
data:
  cx_survey:
    path: s.csv
    colums: {nps: q1}
privacy:
  anonymity_flor: 3
"""
    )
    by_key = {p.column.split(" ")[0]: p for p in problems}
    assert "did you mean 'columns'" in by_key["data.cx_survey.colums"].message
    assert "(line 6)" in by_key["data.cx_survey.colums"].column
    assert "did you mean 'anonymity_floor'" in by_key["privacy.anonymity_flor"].message
    assert by_key["privacy.anonymity_flor"].fix == "Rename 'anonymity_flor' to 'anonymity_floor'."


def test_wrong_values_say_what_is_expected():
    problems = _problems(
        """
client: {name: Acme, currency: euro, colours: {primary: blue}}
data:
  cx_survey: {path: s.csv, format: spss}
elements:
  result: []
privacy: {anonymity_floor: 1}
"""
    )
    text = "\n".join(f"{p.column}: {p.message}" for p in problems)
    assert "client.currency" in text
    assert "client.colours.primary" in text and "#0B3C5D" in text
    assert "data.cx_survey.format" in text and "'sav'" in text
    assert "did you mean 'results'" in text
    assert "privacy.anonymity_floor" in text
    assert len(problems) == 5


def test_cross_checks_name_the_key():
    problems = _problems(
        """
client: {name: Acme}
data:
  customers: {path: c.csv, columns: {signup_dat: joined}}
elements:
  pride: [{name: pride, table: employees, column: pride}]
"""
    )
    text = "\n".join(f"{p.column}: {p.message}" for p in problems)
    assert "data.customers.columns.signup_dat" in text and "did you mean 'signup_date'" in text
    assert "elements.pride.0.table" in text and "not declared" in text


def test_missing_required_section():
    problems = _problems("client: {name: Acme}\n")
    assert any(p.column.startswith("data") and "required" in p.message for p in problems)


def test_yaml_syntax_error_names_position():
    with pytest.raises(ConfigError) as exc:
        parse_engagement_config("client: {name: Acme\ndata: [", file="e.yml")
    assert "line" in exc.value.message and exc.value.fix


def test_yaml_is_loaded_safely():
    with pytest.raises(ConfigError):
        parse_engagement_config("client: !!python/object/apply:os.system ['echo hi']\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_engagement_config(tmp_path)
    assert "rox new" in exc.value.fix


@pytest.mark.parametrize("slug", ["../x", "a/b", "", "..", "A B", "x\\y", ".hidden"])
def test_bad_slugs_rejected(slug):
    with pytest.raises(ConfigError):
        validate_slug(slug)


@pytest.mark.parametrize("slug", ["acme", "acme-hotels-2026", "x_1"])
def test_good_slugs_accepted(slug):
    assert validate_slug(slug) == slug
