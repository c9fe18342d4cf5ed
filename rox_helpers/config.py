"""The engagement configuration: one ``engagement.yml`` per client engagement.

:func:`load_engagement_config` reads the file with a safe YAML loader,
validates it with the pydantic model :class:`EngagementConfig` and turns every
problem into a :class:`~rox_helpers.errors.ConfigError` that names the file,
the key path (with its line), the expected value and, for unknown keys, the
nearest valid key ("did you mean").
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rox_helpers.errors import ConfigError, Problem
from rox_helpers.schemas import CANONICAL, TABLES

ELEMENTS = ("pride", "influencers", "behaviours", "values", "results")
#: measures computed by the workbook itself (not read from a column), usable in linkage paths
DERIVED_MEASURES = {"influencer_pride": "influencers"}
FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
    ".sav": "sav",
    ".zsav": "sav",
}
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def validate_slug(slug: str) -> str:
    """Return ``slug`` if it is a safe engagement folder name, else raise ConfigError."""
    if not SLUG_RE.fullmatch(slug or "") or ".." in slug:
        raise ConfigError(
            f"Invalid engagement slug {slug!r}.",
            column="slug",
            rule="lower-case letters, digits, '-' or '_', 1-63 characters, no path separators",
            fix="Choose a name like 'acme-hotels-2026'.",
        )
    return slug


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)


class Colours(_Model):
    primary: str = "#0B3C5D"
    secondary: str = "#328CC1"
    accent: str = "#D9B310"
    neutral: str = "#6B7B8C"

    @field_validator("*")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not HEX_RE.fullmatch(v):
            raise ValueError(f"expected a colour like '#0B3C5D', got {v!r}")
        return v


class Client(_Model):
    name: str = Field(min_length=1)
    industry: str = "hospitality"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    colours: Colours = Colours()


class Source(_Model):
    """Where one canonical table comes from and how its columns map.

    Either ``path`` (a file, a glob such as ``data/interactions/*.parquet``, or a
    hive-partitioned folder such as ``interactions/year=2026/month=*/``) or ``connection``
    plus ``table`` (see :mod:`rox_helpers.engines`).
    """

    path: str | None = Field(
        default=None,
        min_length=1,
        description="file, glob or partitioned folder, relative to the engagement folder",
    )
    connection: str | None = Field(
        default=None,
        min_length=1,
        description="duckdb:///file.duckdb (or a .duckdb path), postgresql://user@host:port/db "
        "or spark:local[*] / spark://master:7077; credentials come from the environment",
    )
    table: str | None = Field(
        default=None,
        min_length=1,
        description="the table on the connection (schema.table); for Spark also a Parquet or "
        "Delta path",
    )
    extract: Literal["log", "features"] | None = Field(
        default=None,
        description="what comes back from a connection: the validated log, or only customer "
        "features and aggregates (default: features for connections, log for files)",
    )
    quarantine_sample: int = Field(
        default=10_000,
        ge=0,
        description="at most this many failing rows of a log are kept in the quarantine "
        "(all are counted)",
    )
    format: Literal["csv", "parquet", "excel", "sav"] | None = None
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical column -> client column; identical names need no entry",
    )
    date_format: str | None = Field(
        default=None, description="strftime format for all date columns, e.g. '%d/%m/%Y'"
    )
    date_formats: dict[str, str] = Field(default_factory=dict)
    missing_codes: dict[str, list[int | float | str]] = Field(
        default_factory=dict, description="canonical column -> values that mean missing"
    )
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None

    @field_validator("connection")
    @classmethod
    def _no_password(cls, v: str | None) -> str | None:
        if not v:
            return v
        from rox_helpers.engines import literal_password_problem

        problem = literal_password_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        if (self.path is None) == (self.connection is None):
            raise ValueError(
                "give exactly one of path (a file, glob or partitioned folder) or connection "
                "(with table)"
            )
        if self.connection is not None and self.table is None:
            raise ValueError(
                "a connection needs a table (e.g. table: analytics.interactions; for Spark "
                "also a Parquet or Delta path)"
            )
        if self.path is not None and self.table is not None:
            raise ValueError("table goes with connection; a file source has only path")
        if self.path is not None and self.extract == "features":
            raise ValueError("the features extract is for connection sources; files are logs")
        return self

    @property
    def resolved_extract(self) -> str:
        """``log`` or ``features``: what a load brings back from the source."""
        return self.extract or ("features" if self.connection else "log")

    def where(self) -> str:
        """How messages name the source: the path, or the connection and table (no
        credentials)."""
        if self.connection is None:
            return str(self.path)
        from rox_helpers.engines import describe

        return describe(self.connection, self.table)

    def resolved_format(self) -> str:
        if self.format:
            return self.format
        if self.path is None:
            return "table"
        return FORMAT_BY_SUFFIX.get(Path(self.path.rstrip("/*")).suffix.lower(), "csv")


class Data(_Model):
    customers: Source | None = None
    interactions: Source | None = None
    cx_survey: Source | None = None
    employees: Source | None = None
    units: Source | None = None
    network: Source | None = None

    def declared(self) -> dict[str, Source]:
        return {t: s for t in TABLES if (s := getattr(self, t)) is not None}


class Measure(_Model):
    """One measure of a ROX element, e.g. ``employees.pride`` for pride."""

    name: str
    table: Literal["customers", "interactions", "cx_survey", "employees", "units", "network"]
    column: str
    higher_is_better: bool = True
    label: str | None = None
    aggregate: Literal["mean", "nps", "top2", "share", "sum", "count", "rate"] = "mean"
    where: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="keep only rows whose column holds one of these values, e.g. "
        "{team: [front_desk]} for front-desk turnover",
    )

    def allowed(self, column: str) -> list[str]:
        v = self.where[column]
        return [v] if isinstance(v, str) else list(v)


class Outcome(_Model):
    table: Literal["cx_survey", "customers", "units"] = "cx_survey"
    column: str = "nps"


class Segmentation(_Model):
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=8, ge=2)
    n_clusters: int | None = Field(default=None, ge=2, description="fix k instead of choosing")
    features: list[str] = Field(
        default_factory=list,
        description="feature columns or patterns (book_share_*); the module's defaults if empty",
    )
    names: dict[int | str, str] = Field(
        default_factory=dict, description="segment number (or automatic name) -> your name"
    )
    descriptions: dict[int | str, str] = Field(default_factory=dict)
    min_observed: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="share of the features a customer must show to be segmented",
    )

    @model_validator(mode="after")
    def _range(self) -> Segmentation:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        return self


class DriverWhatIf(_Model):
    """Raise one driver's ratings by ``shift`` points, or move ``move_up`` (a share) of the
    respondents up one point."""

    driver: str
    shift: float | None = None
    move_up: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _one(self) -> DriverWhatIf:
        if (self.shift is None) == (self.move_up is None):
            raise ValueError("give exactly one of shift (points) or move_up (a share, 0-1)")
        return self


class Drivers(_Model):
    """Key driver analysis (notebook 03)."""

    compare_by: list[str] = Field(
        default_factory=list,
        description="survey columns to compare drivers across (e.g. trip_purpose), and "
        "'segment' for the behavioural segments",
    )
    cluster: str | None = Field(
        default="unit_id", description="resample whole units in the bootstrap (None: answers)"
    )
    missing: Literal["pairwise", "listwise"] = "pairwise"
    n_boot: int = Field(default=500, ge=0)
    what_if: list[DriverWhatIf] = Field(default_factory=list)


class Journey(_Model):
    """Journeys, moments and comment themes (notebook 05)."""

    stages: list[str] = Field(default_factory=list)
    digital_channels: list[str] = Field(default_factory=lambda: ["web", "app"])
    goal_stage: str | None = Field(
        default=None, description="a journey reaching this stage is complete (default: last)"
    )
    session_gap_days: float = Field(
        default=7.0,
        gt=0,
        description="after a dead end, a contact at the same stage this much later starts a "
        "new journey",
    )
    open_days: float = Field(
        default=30.0,
        ge=0,
        description="logs without 'completed': journeys last seen this close to the end of "
        "the log may still go on (open, not a drop-off)",
    )
    moment_score: str = Field(
        default="csat", description="survey score of a touchpoint experience (csat, nps, ...)"
    )
    very_good: float = Field(default=5, description="moment score at or above: very good")
    bad: float = Field(default=2, description="moment score at or below: bad")
    problem_max: float = Field(
        default=4, description="an attribute rated at or below this is a problem (forgiveness)"
    )
    horizon_months: int = Field(
        default=6, ge=1, le=24, description="months followed after an answer for returns"
    )
    language: str = Field(
        default="en", description="language of the comments; others are counted and set aside"
    )
    n_themes: int = Field(default=8, ge=2, le=30, description="themes found by NMF")
    themes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="theme lexicon: theme name -> words or phrases that raise it",
    )
    min_base: int | None = Field(
        default=None, ge=1, description="smallest base shown or tested (privacy.reliability_base)"
    )

    @model_validator(mode="after")
    def _goal_is_a_stage(self) -> Journey:
        if self.goal_stage and self.stages and self.goal_stage not in self.stages:
            raise ValueError(
                f"goal_stage {self.goal_stage!r} is not one of the stages {self.stages}"
            )
        if self.bad >= self.very_good:
            raise ValueError(f"bad ({self.bad}) must be below very_good ({self.very_good})")
        return self


class Privacy(_Model):
    identifier_columns: dict[str, list[str]] = Field(
        default_factory=dict, description="table -> client columns holding direct identifiers"
    )
    # drop by default: data minimisation (no analysis needs a name, e-mail or phone, hashed
    # or not); "hash" keeps a keyed pseudonym where records must be linked across sources.
    # Customer, employee and response ids are always pseudonymised, whatever this says.
    identifier_action: Literal["hash", "drop"] = "drop"
    auto_detect_identifiers: bool = True
    scrub_free_text: bool = True
    reliability_base: int = Field(default=30, ge=1)
    anonymity_floor: int = Field(default=5, ge=2)
    require_analytics_consent: bool = True
    name_influencers: bool = False
    legal_basis_for_naming: str | None = None

    @model_validator(mode="after")
    def _naming_needs_a_basis(self) -> Privacy:
        if self.name_influencers and not (self.legal_basis_for_naming or "").strip():
            raise ValueError(
                "name_influencers is true but legal_basis_for_naming is empty: record the "
                "legal basis (e.g. 'legitimate interest, DPIA ref. 2026-04, works council "
                "informed') or set name_influencers: false to show 'Influencer 1..n'"
            )
        return self


class CodebookEntry(_Model):
    label: str
    scale: tuple[float, float] = (1, 10)
    missing_codes: list[int | float | str] = Field(default_factory=list)
    higher_is_better: bool = True
    group: str | None = Field(
        default=None, description="theme of a rated attribute (arrival, room, staff, price)"
    )

    @model_validator(mode="after")
    def _scale(self) -> CodebookEntry:
        if self.scale[1] <= self.scale[0]:
            raise ValueError(f"scale must be [low, high] with low < high, got {list(self.scale)}")
        return self


class Weighting(_Model):
    """How survey responses are weighted before metrics are computed."""

    use_client_weight: bool = True
    rake_to_customers: list[str] = Field(
        default_factory=list,
        description="customers columns to rake respondents to (e.g. region, loyalty_tier)",
    )
    trim: tuple[float, float] | None = (0.3, 3.0)


class Target(_Model):
    target: float
    amber_margin: float = Field(default=0.0, ge=0)


class Measurement(_Model):
    """Reporting period, weighting, targets and the frozen scorecard baseline."""

    period: Literal["month", "quarter", "year"] = "quarter"
    weighting: Weighting = Weighting()
    targets: dict[str, Target] = Field(default_factory=dict)
    baseline_period: str | None = Field(
        default=None,
        description="period the scorecard is standardised against, e.g. '2025Q1'; frozen "
        "once chosen so later indices stay comparable (the first period when omitted)",
    )


class Hypothesis(_Model):
    """A claim to test: the effect of ``measures[0]`` on ``measures[-1]``."""

    id: str
    statement: str
    measures: list[str] = Field(min_length=2)
    expected_sign: Literal["+", "-"] | None = Field(
        default=None, description="the direction the statement claims (+ raises, - lowers)"
    )


class Linkage(_Model):
    """The ROX linkage model: which measure drives which, at what grain and lag."""

    grain: Literal["month", "quarter", "year"] = "quarter"
    paths: dict[str, list[str]] = Field(
        default_factory=dict,
        description="child measure -> its hypothesised parents (measure names); empty: each "
        "element's measures on the first measure of every earlier element",
    )
    lags: dict[str, Literal[0, 1]] = Field(
        default_factory=dict, description="child measure -> lag of its parents in periods"
    )
    default_lag: Literal[0, 1] = 1
    lead_grain: Literal["month", "quarter", "year"] | None = Field(
        default="month",
        description="grain of the lead test for feedback, when finer than grain: a feedback "
        "acting within a month is averaged away in quarterly means; None: the model's grain",
    )
    min_reliability: float = Field(default=0.5, ge=0, le=1)
    correct_noise: Literal["none", "guest_survey", "all"] = Field(
        default="guest_survey",
        description="correct links for the sampling noise of surveyed parents' cell means "
        "(errors-in-variables, guarded): guest survey parents, all, or none",
    )
    n_boot: int = Field(default=499, ge=0)
    respondent_controls: list[str] | None = Field(
        default=None,
        description="survey columns held constant in respondent-level equations (default: "
        "every rated attribute of the codebook in the survey)",
    )
    what_if: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="named what-if scenarios for the report: name -> {measure: change in its "
        "raw units}, e.g. 'Check-in 2 minutes faster': {checkin_minutes: -2}",
    )


class Scenario(_Model):
    name: str
    cost: float = Field(ge=0)
    target_measure: str
    expected_change: float
    horizon_months: int = Field(default=12, ge=1)


class ValueScenario(_Model):
    """One experience investment to cost out (notebook 07): a change in one measure, for
    the customers it reaches."""

    name: str = Field(min_length=1)
    cost: float = Field(ge=0, description="one-off investment, in client.currency")
    running_cost: float = Field(default=0.0, ge=0, description="yearly running cost")
    measure: str = Field(
        min_length=1,
        description="measure it moves: a linkage measure (e.g. checkin_minutes) or a rated "
        "attribute of the guest survey (e.g. checkin_speed)",
    )
    change: float = Field(description="change in the measure's own units, e.g. -3 (minutes)")
    change_range: tuple[float, float] | None = Field(
        default=None,
        description="low and high plausible change for the sensitivity (default: +-50%)",
    )
    applies_to: str | None = Field(
        default=None,
        description="customers column (yes/no) naming who it reaches, e.g. app_user; "
        "empty: every customer",
    )
    ramp_months: int = Field(default=0, ge=0, le=60, description="months to full effect")

    @model_validator(mode="after")
    def _range(self) -> ValueScenario:
        if self.change == 0:
            raise ValueError(f"scenario {self.name!r}: change is 0, so nothing would move")
        if self.change_range is not None:
            lo, hi = self.change_range
            if not min(lo, hi) <= self.change <= max(lo, hi):
                raise ValueError(
                    f"scenario {self.name!r}: change {self.change:g} lies outside "
                    f"change_range [{lo:g}, {hi:g}]"
                )
        return self


class Value(_Model):
    """The ROX business case (notebook 07): customer lifetime value and the scenarios."""

    margin: float = Field(default=0.35, gt=0, le=1, description="contribution margin on revenue")
    discount_rate: float = Field(default=0.08, ge=0, lt=1, description="yearly discount rate")
    horizon_years: int = Field(default=3, ge=1, le=20)
    holdout_months: int = Field(
        default=12, ge=1, description="the last months of the log, held out to check the CLV model"
    )
    stay_stage: str = Field(default="check_in", description="journey stage whose rows are stays")
    driver_groups: str | None = Field(
        default="trip_purpose",
        description="survey column whose groups get their own driver model (None: one model)",
    )
    n_draws: int = Field(default=1000, ge=100, le=20000, description="Monte Carlo draws")
    scale_to: Literal["log", "units"] = Field(
        default="log",
        description="value the log's identified guests only (log), or scale their extra "
        "value to all guests by units revenue / log revenue (units)",
    )
    scenarios: list[ValueScenario] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Value:
        names = [s.name for s in self.scenarios]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(dup)}")
        return self


ACTION_KEYS = (
    "fuse_cx_ex",
    "communities",
    "magic_moments",
    "behaviour",
    "data_respect",
    "win_journey",
)


class MaturityOverride(_Model):
    """A maturity metric's thresholds (values reaching levels 2-5) and rationale."""

    thresholds: list[float] | None = Field(default=None, min_length=4, max_length=4)
    rationale: str | None = None
    higher_is_better: bool | None = None
    action: Literal[ACTION_KEYS] | None = None  # type: ignore[valid-type]
    label: str | None = None


class Initiative(_Model):
    """An initiative the consultant proposes under one of the six actions."""

    name: str = Field(min_length=1)
    action: Literal[ACTION_KEYS]  # type: ignore[valid-type]
    impact: float | None = Field(default=None, ge=1, le=5, description="1-5; default: action's")
    effort: float | None = Field(default=None, ge=1, le=5, description="1-5; default: action's")
    owner: str = ""
    note: str = ""


class Actions(_Model):
    """The six actions (notebook 06): maturity thresholds, privacy checks and the plan."""

    maturity_file: str | None = Field(
        default=None,
        description="maturity thresholds replacing the shipped templates/maturity.yml, "
        "relative to the engagement folder",
    )
    maturity: dict[str, MaturityOverride] = Field(
        default_factory=dict, description="metric -> thresholds / rationale overrides"
    )
    quasi_identifiers: list[str] = Field(
        default_factory=lambda: ["region", "age_band", "loyalty_tier", "signup_year"],
        description="customer attributes an outsider could know, for k-anonymity "
        "(signup_year: the year of signup_date)",
    )
    released_tables: list[str] = Field(
        default_factory=lambda: ["customers", "customer_features", "customer_segments"],
        description="customer-level artifact tables of a run checked for k-anonymity",
    )
    static_covariates: list[str] = Field(
        default_factory=lambda: ["region", "age_band"],
        description="customer attributes fixed before joining, used as covariates of the "
        "community and app effects (leave out snapshots joining could change)",
    )
    min_pre_months: int = Field(default=6, ge=2, description="history needed before joining")
    min_post_months: int = Field(default=3, ge=1, description="months needed after joining")
    trim: float = Field(default=0.05, ge=0, lt=0.5, description="overlap trimming of propensity")
    n_boot: int = Field(default=200, ge=0)
    journey_dimensions: dict[
        Literal["navigation", "quality", "breadth", "price", "convenience"], list[str]
    ] = Field(
        default_factory=dict,
        description="dimension -> codebook attributes; empty: matched on names and labels",
    )
    initiatives: list[Initiative] = Field(default_factory=list)


class EngagementConfig(_Model):
    """The whole of ``engagement.yml``."""

    client: Client
    seed: int = 20261123
    data: Data
    elements: dict[
        Literal["pride", "influencers", "behaviours", "values", "results"], list[Measure]
    ] = Field(default_factory=dict)
    outcome: Outcome = Outcome()
    segmentation: Segmentation = Segmentation()
    drivers: Drivers = Drivers()
    journey: Journey = Journey()
    privacy: Privacy = Privacy()
    measurement: Measurement = Measurement()
    codebook: dict[str, CodebookEntry] = Field(default_factory=dict)
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    scenarios: list[Scenario] = Field(default_factory=list)
    linkage: Linkage = Linkage()
    actions: Actions = Actions()
    value: Value = Value()

    @model_validator(mode="after")
    def _cross_checks(self) -> EngagementConfig:
        problems: list[str] = []
        declared = self.data.declared()
        if not declared:
            problems.append("data: declare at least one table (e.g. cx_survey)")
        for table, src in declared.items():
            spec = CANONICAL[table]
            for canon in src.columns:
                if canon in spec.columns:
                    continue
                if spec.open_measures:
                    continue  # extra measures (KPIs, attributes, behaviours) are welcome
                close = difflib.get_close_matches(canon, list(spec.columns), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    f"data.{table}.columns.{canon}: {canon!r} is not a column of the canonical "
                    f"{table} table{hint} (valid: {', '.join(spec.columns)})"
                )
        for element, measures in self.elements.items():
            for i, m in enumerate(measures):
                if m.table not in declared:
                    problems.append(
                        f"elements.{element}.{i}.table: table {m.table!r} is not declared "
                        f"under data (declared: {', '.join(declared) or 'none'})"
                    )
        if self.outcome.table not in declared and declared:
            problems.append(f"outcome.table: table {self.outcome.table!r} is not declared")
        problems += self._linkage_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _linkage_problems(self) -> list[str]:
        known = {m.name for _, m in self.measures()} | set(DERIVED_MEASURES)
        problems = []

        def check(name: str, where: str) -> None:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"{where}: {name!r} is not a measure of any element{hint}")

        for child, parents in self.linkage.paths.items():
            check(child, f"linkage.paths.{child}")
            for p in parents:
                check(p, f"linkage.paths.{child}")
                if p == child:
                    problems.append(
                        f"linkage.paths.{child}: a measure cannot be its own parent (a lagged "
                        "outcome inside a fixed-effects regression is biased, Nickell 1981); "
                        "remove it"
                    )
        for child in self.linkage.lags:
            check(child, f"linkage.lags.{child}")
        for name, changes in self.linkage.what_if.items():
            for m in changes:
                check(m, f"linkage.what_if.{name}")
        for i, h in enumerate(self.hypotheses):
            for name in h.measures:
                check(name, f"hypotheses.{i}.measures")
        if not problems and self.linkage.paths:
            import networkx as nx

            g = nx.DiGraph((p, c) for c, ps in self.linkage.paths.items() for p in ps)
            if not nx.is_directed_acyclic_graph(g):
                cycle = " -> ".join(a for a, _ in nx.find_cycle(g))
                problems.append(
                    f"linkage.paths: the paths form a loop ({cycle}); the chain must run one "
                    "way; a feedback is tested by the lead test, not declared"
                )
        return problems

    # Convenience -----------------------------------------------------------------
    def measure(self, name: str) -> tuple[str, Measure] | None:
        """(element, measure) of a measure name, or None."""
        return next(((e, m) for e, m in self.measures() if m.name == name), None)

    def measures(self) -> list[tuple[str, Measure]]:
        """(element, measure) pairs in element order."""
        return [(e, m) for e in ELEMENTS for m in self.elements.get(e, [])]


# --------------------------------------------------------------------------------------
# Loading with readable errors
# --------------------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """Safe loader; used to compose nodes so errors can cite line numbers."""


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the key at ``loc`` in a composed YAML node tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    line = k.start_mark.line + 1
                    node = v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        else:
            return line
    return line


def _unwrap(tp: Any) -> Any:
    """Strip Optional/Annotated to the model or container type."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tp
    return tp


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the model reached by following ``loc`` from the root model."""
    tp: Any = EngagementConfig
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                return []
            tp = tp.model_fields[part].annotation
        else:
            origin = typing.get_origin(tp)
            args = typing.get_args(tp)
            if origin in (dict,) and args:
                tp = args[1]
            elif origin in (list, tuple) and args:
                tp = args[0]
            else:
                return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _expected(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if err["type"] == "literal_error":
        return f"one of {ctx.get('expected')}"
    if err["type"] == "missing":
        return "a value (this key is required)"
    return err["msg"]


def problems_from_validation(
    exc: ValidationError, *, file: str, root: yaml.Node | None = None
) -> list[Problem]:
    """Turn a pydantic ValidationError into one Problem per error, with did-you-mean hints."""
    problems: list[Problem] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # pydantic puts the tag of a Literal-keyed dict in the loc as "[key]" pieces; keep keys only
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("[")))
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{key} (line {line})" if line else key
        fix = ""
        if err["type"] == "extra_forbidden":
            valid = _fields_at(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            msg = f"unknown key {loc[-1]!r}"
            if close:
                msg += f"; did you mean {close[0]!r}?"
                fix = f"Rename {loc[-1]!r} to {close[0]!r}."
            else:
                fix = f"Remove it; valid keys here: {', '.join(valid)}."
        elif err["type"] == "value_error":
            # Cross-checks report "key.path: message" lines; cite each with its own line.
            for sub in str((err.get("ctx") or {}).get("error", err["msg"])).split("\n"):
                sub_key, sep, sub_msg = sub.partition(": ")
                if sep and " " not in sub_key:
                    sub_loc = tuple(int(p) if p.isdigit() else p for p in sub_key.split("."))
                    sub_line = _line_of(root, sub_loc)
                    col = f"{sub_key} (line {sub_line})" if sub_line else sub_key
                else:
                    col, sub_msg = where, sub
                problems.append(
                    Problem("error", sub_msg, file=file, column=col, rule="engagement.yml schema")
                )
            continue
        else:
            got = err.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            msg = f"expected {_expected(err)}"
            if err["type"] != "missing":
                msg += f", got {shown}"
            if err["type"] == "literal_error" and isinstance(got, str):
                options = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
                close = difflib.get_close_matches(got, options, n=1, cutoff=0.5)
                if close:
                    msg += f"; did you mean {close[0]!r}?"
                    fix = f"Use {close[0]!r}."
        problems.append(
            Problem("error", msg, file=file, column=where, rule="engagement.yml schema", fix=fix)
        )
    return problems


def parse_engagement_config(text: str, *, file: str = "engagement.yml") -> EngagementConfig:
    """Validate YAML text; raise ConfigError listing every problem."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        raw = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(
            f"{file} is not valid YAML ({where}): {getattr(exc, 'problem', exc)}",
            file=file,
            rule="YAML syntax",
            fix="Check indentation (spaces, not tabs) and quoting around the position given.",
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{file} must contain a mapping of settings (client:, data:, ...).",
            file=file,
            rule="top-level mapping",
            fix="Start from templates/engagement.yml (rox new <slug>).",
        )
    try:
        return EngagementConfig.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from_validation(exc, file=file, root=root)
        raise ConfigError(
            f"{file} has {len(problems)} problem(s):",
            file=file,
            problems=problems,
            rule="engagement.yml schema",
            fix="Correct the keys listed; templates/engagement.yml documents every option.",
        ) from None


def load_engagement_config(engagement: str | Path) -> EngagementConfig:
    """Read and validate ``<engagement>/engagement.yml`` (or a path to the file itself)."""
    path = Path(engagement)
    if path.is_dir():
        path = path / "engagement.yml"
    if not path.is_file():
        raise ConfigError(
            f"No engagement configuration at {path}.",
            file=str(path),
            rule="engagement.yml exists",
            fix="Create one with `rox new <slug>` or pass the engagement folder.",
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text: {exc}",
            file=str(path),
            rule="UTF-8 encoding",
            fix="Save engagement.yml as UTF-8.",
        ) from None
    cfg = parse_engagement_config(text, file=str(path))
    # the consultant's segment names from review.yml win over engagement.yml's (next run)
    from rox_helpers.review import load_review

    renames = load_review(path.parent).segments
    if renames and getattr(cfg, "segmentation", None) is not None:
        cfg.segmentation.names = {**cfg.segmentation.names, **renames}
    return cfg
