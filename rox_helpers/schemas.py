"""The canonical data model, declared once.

Every analysis reads only these tables.  A client's files are mapped onto them
by ``engagement.yml``.  The same declaration drives four things:

* the pandera schemas that validate in-memory tables (:mod:`rox_helpers.validate`),
* the DuckDB/Ibis row rules that validate interaction logs larger than memory,
* the mapping proposal of ``rox new --from-data`` (names, synonyms, value ranges),
* the commented scaffold of ``templates/engagement.yml``.

Column kinds
------------
``id``        identifier, stored as string
``str``       free or categorical text
``date``      calendar date (stored as ``datetime64``)
``datetime``  timestamp
``period``    a month (or other period), stored as the first day of it
``float`` / ``int`` numbers; ``bool`` yes/no flags (Y/N, yes/no, true/false, 1/0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "str", "date", "datetime", "period", "float", "int", "bool"]

TABLES = ("customers", "interactions", "cx_survey", "employees", "units", "network")


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column.

    ``references`` names ``"table.column"`` for referential integrity;
    ``identifier`` marks a direct identifier (pseudonymised or dropped on load);
    ``synonyms`` help ``rox new --from-data`` recognise client column names.
    """

    name: str
    kind: Kind
    required: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    references: str | None = None
    identifier: bool = False
    free_text: bool = False
    synonyms: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One canonical table.

    ``open_measures``: whether extra numeric measure columns (KPIs, behaviour
    scores, rated attributes) may be mapped besides the canonical ones.
    """

    name: str
    description: str
    columns: dict[str, ColumnSpec]
    key: tuple[str, ...] = ()
    open_measures: bool = False
    customer_level: bool = False
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]


def _cols(*specs: ColumnSpec) -> dict[str, ColumnSpec]:
    return {c.name: c for c in specs}


CHANNELS = ("web", "app", "phone", "front_desk", "email", "chat", "social", "store", "other")

CUSTOMERS = TableSpec(
    name="customers",
    description="One row per customer: profile, community and app membership, consent.",
    key=("customer_id",),
    customer_level=True,
    columns=_cols(
        ColumnSpec(
            "customer_id",
            "id",
            required=True,
            unique=True,
            synonyms=("guest_id", "client_id", "cust_id", "member_id", "account_id"),
        ),
        ColumnSpec("signup_date", "date", synonyms=("joined", "join_date", "created", "since")),
        ColumnSpec("region", "str", synonyms=("home_region", "area", "country")),
        ColumnSpec("age_band", "str", synonyms=("age_group", "age_range", "age")),
        ColumnSpec("loyalty_tier", "str", synonyms=("tier", "status", "membership_level")),
        ColumnSpec("is_community_member", "bool", synonyms=("community_member", "community")),
        ColumnSpec("community_join_date", "date"),
        ColumnSpec("app_user", "bool", synonyms=("has_app", "app")),
        ColumnSpec("app_install_date", "date", synonyms=("app_installed",)),
        ColumnSpec(
            "referred_by",
            "id",
            references="customers.customer_id",
            synonyms=("referrer", "referrer_id"),
        ),
        ColumnSpec("consent_analytics", "bool", synonyms=("analytics_consent", "consent")),
        ColumnSpec("consent_marketing", "bool", synonyms=("marketing_consent", "opt_in")),
    ),
)

INTERACTIONS = TableSpec(
    name="interactions",
    description="One row per customer interaction along the journey (can be very large).",
    customer_level=True,
    columns=_cols(
        ColumnSpec(
            "customer_id",
            "id",
            required=True,
            references="customers.customer_id",
            synonyms=("guest_id", "client_id", "cust_id"),
        ),
        ColumnSpec(
            "timestamp", "datetime", required=True, synonyms=("ts", "time", "event_time", "date")
        ),
        ColumnSpec(
            "unit_id",
            "id",
            references="units.unit_id",
            synonyms=("hotel_code", "hotel_id", "store_id", "branch", "site", "unit"),
        ),
        ColumnSpec("channel", "str", synonyms=("medium", "source_channel")),
        ColumnSpec("journey_stage", "str", synonyms=("stage", "step", "phase")),
        ColumnSpec("touchpoint", "str", synonyms=("tp", "contact_point", "event")),
        ColumnSpec("completed", "bool", synonyms=("is_completed", "success", "done")),
        # bounded: the engine sums money and durations exactly, as DECIMAL(38, 6), which holds
        # under 1e32 (a larger value would fail the whole sum; it is quarantined instead)
        ColumnSpec(
            "revenue", "float", min=-1e9, max=1e12, synonyms=("amount", "spend", "value", "sales")
        ),
        ColumnSpec(
            "duration_min",
            "float",
            min=0,
            max=1e7,
            synonyms=("duration", "minutes", "handle_time"),
        ),
    ),
)

CX_SURVEY = TableSpec(
    name="cx_survey",
    description="Customer survey responses: NPS, CSAT, CES, rated attributes, comment, weight.",
    key=("response_id",),
    open_measures=True,
    columns=_cols(
        ColumnSpec(
            "response_id",
            "id",
            unique=True,
            synonyms=("resp_id", "responseid", "respondent_id", "record", "id"),
        ),
        ColumnSpec(
            "customer_id",
            "id",
            references="customers.customer_id",
            synonyms=("guest_id", "client_id", "cust_id"),
        ),
        ColumnSpec(
            "unit_id",
            "id",
            references="units.unit_id",
            synonyms=("hotel_code", "hotel_id", "store_id", "branch", "site"),
        ),
        ColumnSpec(
            "date", "date", synonyms=("resp_date", "response_date", "recorded_date", "enddate")
        ),
        ColumnSpec(
            "survey_type",
            "str",
            allowed=("relationship", "transactional"),
            synonyms=("type", "survey"),
        ),
        ColumnSpec("touchpoint", "str", synonyms=("tp", "contact_point")),
        ColumnSpec("channel", "str", synonyms=("medium",)),
        ColumnSpec("trip_purpose", "str", synonyms=("segment", "purpose", "reason_for_visit")),
        ColumnSpec(
            "nps",
            "float",
            min=0,
            max=10,
            synonyms=("q_recommend", "recommend", "likelihood_to_recommend", "ltr", "nps_score"),
        ),
        ColumnSpec(
            "csat",
            "float",
            min=1,
            max=5,
            synonyms=("q_satisfaction", "satisfaction", "overall_sat"),
        ),
        ColumnSpec(
            "ces", "float", min=1, max=7, synonyms=("q_effort", "effort", "customer_effort")
        ),
        ColumnSpec(
            "comment", "str", free_text=True, synonyms=("verbatim", "comments", "feedback", "text")
        ),
        ColumnSpec("weight", "float", min=0, synonyms=("wt", "design_weight", "survey_weight")),
    ),
)

EMPLOYEES = TableSpec(
    name="employees",
    description="EX: one row per employee (per period for pulse panels).",
    key=("employee_id", "period"),
    open_measures=True,
    columns=_cols(
        ColumnSpec(
            "employee_id", "id", required=True, synonyms=("emp_id", "staff_id", "person_id")
        ),
        ColumnSpec(
            "unit_id",
            "id",
            references="units.unit_id",
            synonyms=("hotel_code", "hotel_id", "store_id", "branch", "site"),
        ),
        ColumnSpec("team", "str", synonyms=("department", "dept")),
        ColumnSpec("period", "period", synonyms=("month", "wave", "survey_month")),
        ColumnSpec("role", "str", synonyms=("job", "job_title", "position")),
        ColumnSpec("tenure_months", "float", min=0, synonyms=("tenure",)),
        ColumnSpec("pride", "float", synonyms=("pride_score", "proud")),
        ColumnSpec("enps", "float", min=0, max=10, synonyms=("employee_nps", "e_nps")),
        ColumnSpec("engagement", "float", synonyms=("engagement_score",)),
        ColumnSpec("training_hours", "float", min=0, synonyms=("training",)),
        ColumnSpec("left", "bool", synonyms=("leaver", "attrited", "terminated")),
        ColumnSpec("left_date", "date", synonyms=("leave_date", "termination_date", "exit_date")),
    ),
)

UNITS = TableSpec(
    name="units",
    description="Business units (hotels, stores) by period, with operational KPIs.",
    key=("unit_id", "period"),
    open_measures=True,
    columns=_cols(
        ColumnSpec(
            "unit_id",
            "id",
            required=True,
            synonyms=("hotel_code", "hotel_id", "store_id", "branch", "site"),
        ),
        ColumnSpec("period", "period", synonyms=("month",)),
        ColumnSpec("name", "str", synonyms=("hotel_name", "unit_name", "store_name")),
        ColumnSpec("region", "str", synonyms=("area",)),
    ),
)

NETWORK = TableSpec(
    name="network",
    description="Optional: employee peer nominations or collaboration edges.",
    columns=_cols(
        ColumnSpec(
            "source",
            "id",
            required=True,
            references="employees.employee_id",
            synonyms=("from_emp", "from", "nominator"),
        ),
        ColumnSpec(
            "target",
            "id",
            required=True,
            references="employees.employee_id",
            synonyms=("to_emp", "to", "nominee"),
        ),
        ColumnSpec("weight", "float", min=0, synonyms=("strength", "w")),
    ),
)

CANONICAL: dict[str, TableSpec] = {
    t.name: t for t in (CUSTOMERS, INTERACTIONS, CX_SURVEY, EMPLOYEES, UNITS, NETWORK)
}

# Column names that usually hold a direct identifier (name, e-mail, phone, address).
IDENTIFIER_NAME_HINTS = (
    "name",
    "first_name",
    "last_name",
    "surname",
    "full_name",
    "email",
    "e_mail",
    "mail",
    "phone",
    "mobile",
    "telephone",
    "tel",
    "address",
    "street",
    "postcode",
    "zip",
    "passport",
    "ssn",
    "national_id",
    "ip_address",
)
