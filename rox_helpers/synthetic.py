"""Deterministic synthetic client data: a mid-size hotel chain ("ROX Hotels").

The generator writes the raw files a Return-on-Experience engagement would receive from a
hotel chain, together with the ground truth that produced them, so that every estimate made
downstream (driver analysis, turnover models, uplift, influencer detection, data-quality
quarantine, PII scrubbing) can be checked against known answers.

Files written by :func:`generate_sample`
-----------------------------------------
``customers.csv``          loyalty/CRM master (cp1252, ``;``-separated, dd/mm/yyyy dates)
``interactions.parquet``   journey event log (one row per touchpoint contact)
``cx_survey.sav``          SPSS guest survey (user-missing codes 0 and 99 on attribute ratings)
``employees.csv``          monthly employee pulse panel (UTF-8, ``,``-separated)
``units.csv``              hotel x month KPIs
``network.csv``            employee peer nominations
``customer_segments.parquet``  true behavioural segment of each guest
``ground_truth.json``      structural coefficients, planted artefacts, bad rows

Raw columns (as written)
------------------------
customers.csv
    guest_id ("G0000123"), full_name, email, phone (varied national/international formats),
    joined (dd/mm/yyyy), home_region, age_band, loyalty_tier, is_community_member (Y/N),
    community_join_date (dd/mm/yyyy or empty), app_user (Y/N), app_install_date,
    referred_by (guest_id or empty), consent_analytics (Y/N), consent_marketing (Y/N).
interactions.parquet
    guest_id (string), ts (timestamp[us], sorted), hotel_code (string), channel, stage,
    touchpoint (see :data:`TOUCHPOINTS`), completed (bool: the step led on to the next stage;
    for post_stay: the e-mail/app review was opened), revenue (float64 EUR; room revenue on
    completed *book* rows, spend on *stay* rows, else 0), duration_min (float64, null for the
    *room* row and unopened post-stay contacts; the check-in time on *check_in* rows).
cx_survey.sav
    resp_id ("R0000001"), guest_id (empty = anonymous), hotel_code, resp_date (SPSS DATE),
    survey_type, touchpoint (empty for relationship), channel, trip_purpose, q_recommend,
    q_satisfaction, q_effort, att_<attribute> (1-10; 0 and 99 declared user-missing),
    comment (empty if none), weight.
employees.csv
    emp_id ("E00042"), name, hotel_code, team, month (YYYY-MM), role, tenure_months, pride,
    enps, engagement, greet_by_name, first_contact_resolution, training_hours, left (0/1),
    left_date (yyyy-mm-dd or empty).
units.csv
    hotel_code, month, hotel_name, region, rooms, occupancy, revenue, acquisition_cost,
    checkin_minutes, staff_turnover, mobile_checkin_share.
network.csv
    from_emp, to_emp, weight (1-5); nominations made by the staff of the last month.

Causal model
------------
Everything is generated from the structural equations below; all coefficients are module
constants and are copied into ``ground_truth.json["causal_model"]``.

1. **Hotels** ``h`` have a latent management quality ``q_h ~ N(0, 1)``.
2. **Pride** of employee ``i`` in month ``t`` (1-7 mean-scale score, rounded to 1/6)::

       pride = 4.6 + 0.45 q_h + u_i + team_j + 0.25 [tenure < 3] + s_ht
               + fb * (occupancy_{h,t-1} - 0.72) / 0.10 + e,
       u_i ~ N(0, 0.65), e ~ N(0, 0.55),
       s_ht = 0.8 s_h,t-1 + N(0, 0.3 * sqrt(1 - 0.8^2))   (a hotel's pride climate: AR(1),
                                                       stationary SD 0.3, e.g. a new manager)

   ``fb`` is the feedback coefficient (``0.30`` when ``feedback=True``, else ``0``).
3. **Critical behaviours** (per employee-month, depend on the *measured* pride):
   ``greet_by_name`` = share (0-1) of the employee's observed guest contacts in which the guest
   was greeted by name, ``logit = -0.1 + 0.55 (pride - 4.5) + team + N(0, 0.35)``;
   ``first_contact_resolution`` (0-1), ``logit = 0.8 + 0.40 (pride - 4.5)
   + 0.15 log1p(tenure) + N(0, 0.3)``.
4. **Turnover**: ``P(left) = expit(-3.4 - 0.75 (pride - 4.5) + team + 0.4 [tenure < 6])``,
   front desk ``+0.35``. Leavers are replaced by new hires (new ``emp_id``) the next month.
5. **Hotel-month service levels**: mean front-desk check-in time
   ``6.0 - 8.0 (FCR_fd - 0.75) + 12.0 turnover_fd - 0.25 q_h`` minutes; attribute shifts
   ``staff_friendliness += 5.0 (greet_guest_facing - 0.5)``,
   ``cleanliness += 0.8 (pride_housekeeping - 4.7) + 0.3 q_h`` plus fixed hotel effects.
6. **Check-in**: guests with the app installed use mobile check-in with probability 0.8
   (business) / 0.6 (leisure); mobile check-in takes ~1.6 min (log-normal) instead of the
   hotel-month desk time. ``checkin_speed`` latent rating = ``8.6 - 0.40 * minutes``.
7. **Attribute ratings** (1-10 integers) for every stay::

       a_k = base_k + shift_{k,h,t} + 1.3 * halo + N(0, 1.3),
       halo = rater_c + N(0, 0.8), rater_c ~ N(0, 0.6)

   which gives pairwise correlations around 0.5 (halo).
8. **NPS** (0-10) of a stay: ``7.0 + sum_k w_{purpose,k} (rating_k - 7) + N(0, 1.0)``
   rounded and clipped, with the driver weights :data:`DRIVER_WEIGHTS` (check-in speed is the
   strongest driver for business trips, cleanliness for leisure trips).
   CSAT and CES are derived from the latent NPS, booking ease and check-in time.
9. **Returns**: the monthly trip rate of a guest is Poisson with
   ``base_c * season * exp(0.06 (last_nps_c - 7) + 0.10 member_ct + 0.08 app_ct)``,
   where ``last_nps_c`` is the NPS of the guest's latest stay (7 before the first stay).
   ``member_ct``/``app_ct`` switch on after the community join / app install date. Both are
   self-selected: the propensity to join/install rises with ``log(base_c)`` (0.7 and 0.6 logit
   per SD), so the naive member/non-member difference exceeds the causal uplift
   (``exp(0.10)`` and ``exp(0.08)`` rate ratios).
10. **Hotel results**: a hotel's reputation is an exponentially smoothed expected NPS;
    ``logit(occupancy) = logit(0.72) + season + hotel effect + 0.45 reputation + noise``;
    revenue = rooms x days x occupancy x ADR x 1.28.

Customers belong to one of :data:`SEGMENTS` (behavioural groups differing in frequency,
spend, channel mix, app propensity and trip purpose; age band and region are only weakly
tilted by segment). A trip runs through the journey stages :data:`STAGES`; it may stop after
*discover* (no booking), at *book* (abandoned), at *pre_arrival* (no-show) or become a stay
(*check_in* ... *check_out*, optionally *post_stay*).

Survey responses are sampled from actual stays (dated 1-30 days after check-out), with
response propensity lower for business trips and higher for extreme NPS; ``weight`` is the
normalised inverse propensity. Comments are composed from the ratings actually given; a few
contain planted PII (e-mail, phone, staff name) or are written in German/French.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
from scipy.special import ndtr

__all__ = [
    "ATTRIBUTES",
    "CHANNELS",
    "DRIVER_WEIGHTS",
    "SEGMENTS",
    "STAGES",
    "TEAMS",
    "TOUCHPOINTS",
    "SampleSize",
    "Segment",
    "generate_sample",
]

GENERATOR_VERSION = "1.3"

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------
STAGES: tuple[str, ...] = (
    "discover",
    "book",
    "pre_arrival",
    "check_in",
    "stay",
    "check_out",
    "post_stay",
)
CHANNELS: tuple[str, ...] = ("web", "app", "phone", "front_desk")
#: (touchpoint, stage, channel)
TOUCHPOINTS: tuple[tuple[str, str, str], ...] = (
    ("website_search", "discover", "web"),
    ("app_browse", "discover", "app"),
    ("call_centre_enquiry", "discover", "phone"),
    ("website_booking", "book", "web"),
    ("app_booking", "book", "app"),
    ("call_centre_booking", "book", "phone"),
    ("walk_in_booking", "book", "front_desk"),
    ("pre_arrival_email", "pre_arrival", "web"),
    ("app_pre_arrival", "pre_arrival", "app"),
    ("front_desk_checkin", "check_in", "front_desk"),
    ("mobile_checkin", "check_in", "app"),
    ("room", "stay", "front_desk"),
    ("restaurant", "stay", "front_desk"),
    ("room_service", "stay", "phone"),
    ("app_room_request", "stay", "app"),
    ("checkout_desk", "check_out", "front_desk"),
    ("app_checkout", "check_out", "app"),
    ("post_stay_email", "post_stay", "web"),
    ("app_review", "post_stay", "app"),
)
_TP_INDEX = {name: i for i, (name, _, _) in enumerate(TOUCHPOINTS)}
_TP_STAGE = np.array([STAGES.index(s) for _, s, _ in TOUCHPOINTS], dtype=np.int8)
_TP_CHANNEL = np.array([CHANNELS.index(c) for _, _, c in TOUCHPOINTS], dtype=np.int8)
# touchpoint by booking channel (web, app, phone, front_desk); -1 = none
_DISCOVER_TP = np.array([0, 1, 2, -1], dtype=np.int8)
_BOOK_TP = np.array([3, 4, 5, 6], dtype=np.int8)

ATTRIBUTES: tuple[str, ...] = (
    "checkin_speed",
    "cleanliness",
    "staff_friendliness",
    "room_comfort",
    "breakfast",
    "wifi",
    "value",
    "location",
    "booking_ease",
    "quietness",
)
_A = {a: i for i, a in enumerate(ATTRIBUTES)}
_ATT_QUESTION = {
    "checkin_speed": "the speed of check-in",
    "cleanliness": "the cleanliness of your room",
    "staff_friendliness": "the friendliness of the staff",
    "room_comfort": "the comfort of your room and bed",
    "breakfast": "the breakfast",
    "wifi": "the wifi",
    "value": "the value for money",
    "location": "the location of the hotel",
    "booking_ease": "how easy it was to book",
    "quietness": "how quiet your room was",
}

TEAMS: tuple[str, ...] = (
    "front_desk",
    "housekeeping",
    "food_beverage",
    "maintenance",
    "management",
)
_TEAM_SHARES = np.array([0.24, 0.34, 0.26, 0.08, 0.08])
_ROLES: tuple[tuple[tuple[str, float], ...], ...] = (
    (
        ("Receptionist", 0.45),
        ("Senior Receptionist", 0.20),
        ("Night Auditor", 0.12),
        ("Concierge", 0.13),
        ("Front Office Supervisor", 0.10),
    ),
    (
        ("Room Attendant", 0.60),
        ("Laundry Attendant", 0.15),
        ("Public Area Cleaner", 0.15),
        ("Housekeeping Supervisor", 0.10),
    ),
    (
        ("Waiter", 0.40),
        ("Bartender", 0.15),
        ("Commis Chef", 0.20),
        ("Chef de Partie", 0.15),
        ("Restaurant Supervisor", 0.10),
    ),
    (("Maintenance Technician", 0.60), ("Engineer", 0.30), ("Chief Engineer", 0.10)),
    (("Duty Manager", 0.50), ("Department Head", 0.35), ("Revenue Manager", 0.15)),
)
_ROLE_NAMES = [r for team in _ROLES for r, _ in team] + ["General Manager"]
_GM_ROLE = len(_ROLE_NAMES) - 1

_HOTEL_REGIONS = ("North", "South", "East", "West", "Central")
_CUSTOMER_REGIONS = ("North", "South", "East", "West", "Central", "International")
_CITIES = {
    "North": ("Leeds", "Manchester", "Newcastle", "York", "Liverpool", "Edinburgh", "Glasgow"),
    "South": ("Brighton", "Southampton", "Bournemouth", "Portsmouth", "Exeter", "Plymouth"),
    "East": ("Norwich", "Cambridge", "Ipswich", "Colchester", "Peterborough"),
    "West": ("Bristol", "Bath", "Cardiff", "Gloucester", "Swansea"),
    "Central": ("London", "Birmingham", "Nottingham", "Leicester", "Coventry", "Oxford"),
}
_HOTEL_SUFFIX = ("Central", "Riverside", "Station", "Park", "Harbour", "Airport", "Old Town")
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_BASE = np.array([0.08, 0.20, 0.22, 0.20, 0.17, 0.13])
LOYALTY_TIERS: tuple[str, ...] = ("Blue", "Silver", "Gold", "Platinum")
_LOCALES = ("en_GB", "de_DE", "fr_FR", "es_ES", "it_IT")
_COUNTRY_CODE = ("44", "49", "33", "34", "39")
_EMAIL_DOMAINS = (
    ("gmail.com", "outlook.com", "yahoo.co.uk", "btinternet.com", "hotmail.co.uk"),
    ("web.de", "gmx.de", "gmail.com", "t-online.de"),
    ("orange.fr", "free.fr", "gmail.com", "laposte.net"),
    ("gmail.com", "hotmail.es", "telefonica.net", "yahoo.es"),
    ("libero.it", "gmail.com", "virgilio.it", "tiscali.it"),
)
_CORPORATE_DOMAINS = ("northwind.co.uk", "contoso.com", "fabrikam.eu", "acme-consulting.com")


@dataclass(frozen=True)
class Segment:
    """A behavioural customer group.

    Attributes
    ----------
    name : str
        Segment label written to ``customer_segments.parquet``.
    share : float
        Population share.
    base_rate : float
        Relative monthly trip rate (rescaled so that the interaction count matches the target).
    business_share : float
        Probability that a trip is a business trip.
    spend : float
        Multiplier on room rate and on-property spend.
    channel_mix : tuple of float
        Booking channel probabilities (web, app, phone, front_desk).
    app_logit, community_logit : float
        Intercept shifts of the app-install / community-join propensities.
    age_tilt : float
        Weak tilt of the age-band distribution (positive = older).
    international_tilt : float
        Weak tilt of the share of International home region.
    lead_factor : float
        Multiplier on the booking lead time (exponential, mean 7 days for a business trip and
        35 for a leisure trip).
    app_at_signup : float
        Share of the group's app users who install the app when they join the programme
        (the others install it at a random date, mostly inside the window).
    nights_factor : float
        Multiplier on the extra nights of a stay (1 + Poisson with mean 0.7 for a business
        trip and 1.8 for a leisure trip).

    The groups differ in several behaviours at once (frequency, price paid, purpose, booking
    channel, app use, lead time, length of stay), each of which shows in a single trip, so a
    guest's group can be read from one or two stays, as it can in real loyalty data.
    """

    name: str
    share: float
    base_rate: float
    business_share: float
    spend: float
    channel_mix: tuple[float, float, float, float]
    app_logit: float
    community_logit: float
    age_tilt: float
    international_tilt: float
    lead_factor: float = 1.0
    nights_factor: float = 1.0
    app_at_signup: float = 0.0


SEGMENTS: tuple[Segment, ...] = (
    Segment("digital_business_frequent", 0.18, 0.40, 0.90, 1.15, (0.12, 0.85, 0.02, 0.01),
            2.5, -0.2, -0.15, 0.35, 0.6, 0.7, 0.9),
    Segment("occasional_leisure_offline", 0.37, 0.035, 0.05, 1.00, (0.05, 0.00, 0.60, 0.35),
            -3.0, -0.8, 0.25, -0.1, 0.5, 1.0),
    Segment("loyal_leisure_high_spend", 0.20, 0.11, 0.10, 2.20, (0.60, 0.30, 0.09, 0.01),
            0.5, 0.6, 0.10, 0.0, 2.0, 1.8),
    Segment("budget_digital_leisure", 0.25, 0.06, 0.15, 0.55, (0.90, 0.08, 0.01, 0.01),
            -0.8, -0.6, -0.30, 0.0, 0.4, 0.5),
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Structural coefficients (copied to ground_truth.json)
# --------------------------------------------------------------------------------------------
PRIDE_INTERCEPT = 4.6
PRIDE_PER_QUALITY = 0.45
PRIDE_EMPLOYEE_SD = 0.65
PRIDE_HOTEL_MONTH_SD = 0.30  # stationary SD of the hotel's monthly pride climate
PRIDE_HOTEL_AR = 0.8  # month-to-month persistence of that climate
PRIDE_NOISE_SD = 0.55
PRIDE_NEW_HIRE = 0.25
PRIDE_TEAM = (0.0, -0.15, -0.05, -0.10, 0.35)
FEEDBACK_OCC_TO_PRIDE = 0.30  # pride points per +10pp previous-month occupancy (if feedback)

GREET_INTERCEPT, GREET_PER_PRIDE, GREET_SD = -0.1, 0.55, 0.35
GREET_TEAM = (0.4, -0.4, 0.2, -0.4, 0.0)
FCR_INTERCEPT, FCR_PER_PRIDE, FCR_PER_LOG_TENURE, FCR_SD = 0.8, 0.40, 0.15, 0.30

TURN_INTERCEPT, TURN_PER_PRIDE, TURN_NEW_HIRE = -3.4, -0.75, 0.4
TURN_TEAM = (0.35, 0.10, 0.20, -0.20, -0.50)

DESK_BASE, DESK_PER_FCR, DESK_PER_FD_TURNOVER, DESK_PER_QUALITY = 6.0, -8.0, 12.0, -0.25
DESK_SDLOG, MOBILE_MEAN, MOBILE_SDLOG = 0.35, 1.6, 0.30
MOBILE_UPTAKE = {"business": 0.8, "leisure": 0.6}

ATT_BASE = {
    "checkin_speed": 8.6,
    "cleanliness": 7.5,
    "staff_friendliness": 7.4,
    "room_comfort": 7.3,
    "breakfast": 7.0,
    "wifi": 6.8,
    "value": 6.7,
    "location": 7.8,
    "booking_ease": 7.5,
    "quietness": 7.1,
}
CHECKIN_SPEED_PER_MINUTE = -0.40
STAFF_PER_GREET = 5.0
CLEAN_PER_HK_PRIDE = 0.8
ATT_PER_QUALITY = {"cleanliness": 0.3, "room_comfort": 0.35, "breakfast": 0.2, "value": 0.1,
                   "quietness": 0.15}  # fmt: skip
ATT_HOTEL_SD = {"breakfast": 0.4, "wifi": 0.5, "value": 0.3, "location": 0.6, "quietness": 0.5}
BOOKING_EASE_BY_CHANNEL = (0.3, 0.6, -0.3, 0.0)
HALO_LOADING, HALO_RATER_SD, HALO_STAY_SD, ATT_NOISE_SD = 1.3, 0.6, 0.8, 1.3

NPS_INTERCEPT, NPS_CENTER, NPS_NOISE_SD = 7.0, 7.0, 1.0
#: NPS points per rating point, by trip purpose (structural coefficients)
DRIVER_WEIGHTS: dict[str, dict[str, float]] = {
    "business": {
        "checkin_speed": 0.45,
        "cleanliness": 0.12,
        "staff_friendliness": 0.15,
        "room_comfort": 0.08,
        "breakfast": 0.02,
        "wifi": 0.18,
        "value": 0.04,
        "location": 0.12,
        "booking_ease": 0.08,
        "quietness": 0.06,
    },
    "leisure": {
        "checkin_speed": 0.05,
        "cleanliness": 0.45,
        "staff_friendliness": 0.15,
        "room_comfort": 0.18,
        "breakfast": 0.12,
        "wifi": 0.03,
        "value": 0.12,
        "location": 0.08,
        "booking_ease": 0.04,
        "quietness": 0.08,
    },
}

RETURN_PER_NPS, NPS_REF = 0.06, 7.0
COMMUNITY_UPLIFT, APP_UPLIFT = 0.10, 0.08
COMMUNITY_SELECTION, APP_SELECTION = 0.7, 0.6
COMMUNITY_INTERCEPT = -1.6
BASE_RATE_SDLOG = 0.7

OCC_TARGET, OCC_PER_REPUTATION, REP_PERSISTENCE, OCC_HOTEL_SD, OCC_NOISE_SD = (
    0.72, 0.45, 0.6, 0.25, 0.06,
)  # fmt: skip
REVENUE_OTHER_FACTOR = 1.28
SEASON_BUSINESS = np.array([0.95, 1.05, 1.10, 1.05, 1.05, 1.0, 0.85, 0.6, 1.1, 1.15, 1.1, 0.7])
SEASON_LEISURE = np.array([0.7, 0.75, 0.85, 1.0, 1.05, 1.2, 1.45, 1.5, 1.05, 0.9, 0.75, 1.0])

P_STOP_DISCOVER, P_BOOK_ABANDON, P_NO_SHOW = 0.20, 0.05, 0.03
P_POST_STAY = 0.6
ANALYTICS_CONSENT = 0.85
ANONYMOUS_SHARE = 0.10
TRANSACTIONAL_SHARE = 0.6
COMMENT_SHARE = 0.35
PII_SHARE = {"email": 0.02, "phone": 0.02, "staff_name": 0.02}  # of comments
FOREIGN_SHARE = 0.01  # of comments
DONT_KNOW = {"wifi": 0.04}  # default 0.02
NOT_APPLICABLE = {"breakfast": 0.08, "wifi": 0.03, "checkin_speed": 0.005}  # default 0.01
INFLUENCER_SHARE = 0.03
BAD_RATES = {
    "customers.csv": {"duplicate_id": 0.002, "unparseable_date": 0.002},
    "interactions.parquet": {"unknown_unit": 0.004},
    "cx_survey.sav": {"out_of_range": 0.002, "unknown_unit": 0.001, "duplicate_id": 0.001},
    "employees.csv": {"out_of_range": 0.0015, "unknown_unit": 0.001, "duplicate_id": 0.0015},
}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleSize:
    """Size of a generated sample.

    Parameters
    ----------
    n_units : int
        Number of hotels.
    n_months : int
        Number of months in the observation window.
    n_customers : int
        Number of loyalty customers (rows of ``customers.csv`` before planted duplicates).
    n_interactions : int
        Target number of journey events; the realised count is within a few percent.
    n_responses : int
        Number of survey responses (before planted duplicates).
    n_employees : int
        Headcount (number of positions); departures are replaced so it stays constant.
    start : str
        First month of the window (any date inside it, ISO format).
    """

    n_units: int = 40
    n_months: int = 24
    n_customers: int = 30_000
    n_interactions: int = 300_000
    n_responses: int = 15_000
    n_employees: int = 3_000
    start: str = "2024-11-01"

    def __post_init__(self) -> None:
        for name in (
            "n_units",
            "n_months",
            "n_customers",
            "n_interactions",
            "n_responses",
            "n_employees",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_months < 2:
            raise ValueError("n_months must be at least 2")
        if self.n_customers < 10:
            raise ValueError("n_customers must be at least 10")
        try:
            np.datetime64(self.start, "D")
        except ValueError as exc:
            raise ValueError(f"start must be an ISO date, got {self.start!r}") from exc

    def scaled(self, factor: float) -> SampleSize:
        """Return a copy with customers, interactions, responses and employees scaled.

        Parameters
        ----------
        factor : float
            Multiplier (> 0). Units, months and start are unchanged.

        Returns
        -------
        SampleSize
        """
        if not factor > 0:
            raise ValueError("factor must be positive")
        return replace(
            self,
            n_customers=max(10, round(self.n_customers * factor)),
            n_interactions=max(10, round(self.n_interactions * factor)),
            n_responses=max(10, round(self.n_responses * factor)),
            n_employees=max(4 * self.n_units, round(self.n_employees * factor)),
        )

    @classmethod
    def small(cls) -> SampleSize:
        """A quick size for tests: 8 hotels, 12 months, 3,000 customers.

        Returns
        -------
        SampleSize
        """
        return cls(
            n_units=8,
            n_months=12,
            n_customers=3_000,
            n_interactions=30_000,
            n_responses=3_000,
            n_employees=480,
        )


def generate_sample(
    out_dir: Path | str,
    *,
    seed: int = 20261123,
    size: SampleSize = SampleSize(),  # frozen dataclass: safe default
    feedback: bool = False,
    bad_rows: bool = True,
) -> dict:
    """Write the raw client files into ``out_dir`` and return the ground truth.

    Parameters
    ----------
    out_dir : Path or str
        Output folder (created if missing). Existing files of the same name are overwritten.
    seed : int
        Seed of every random draw; the same seed and size give byte-identical files.
    size : SampleSize
        Sample size.
    feedback : bool
        If true, the previous month's occupancy of a hotel feeds back into employee pride
        (``FEEDBACK_OCC_TO_PRIDE`` pride points per +10pp occupancy).
    bad_rows : bool
        If true, plant a few known bad rows (about 0.3-0.5% per table) recorded in the
        ground truth under ``"bad_rows"``.

    Returns
    -------
    dict
        The ground truth, identical to the content of ``out_dir/ground_truth.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(seed)
    children = np.random.SeedSequence(seed).spawn(11)
    rngs = dict(
        zip(
            (
                "hotels",
                "staff",
                "customers",
                "pilot",
                "trips",
                "expand",
                "survey",
                "comments",
                "network",
                "bad",
                "units",
            ),
            (np.random.default_rng(c) for c in children),
            strict=True,
        )
    )
    fb = FEEDBACK_OCC_TO_PRIDE if feedback else 0.0
    cal = _Calendar(size.start, size.n_months)
    pools = _NamePools(seed)

    hotels = _make_hotels(rngs["hotels"], size.n_units)
    staff = _simulate_staff(rngs["staff"], hotels, cal, size.n_employees, fb, pools)
    cust = _make_customers(rngs["customers"], size.n_customers, cal, hotels, pools)

    # calibrate the trip rate so that the interaction count matches the target
    n_pilot = min(size.n_customers, 25_000)
    pilot_idx = np.sort(rngs["pilot"].choice(size.n_customers, n_pilot, replace=False))
    pilot = cust.take(pilot_idx)
    scale = 1.0
    for _ in range(2):
        p_trips = _simulate_trips(rngs["pilot"], pilot, hotels, staff, cal, scale)
        rows = float(p_trips["n_rows"].sum()) * size.n_customers / n_pilot
        scale *= size.n_interactions / max(rows, 1.0)
    trips = _simulate_trips(rngs["trips"], cust, hotels, staff, cal, scale)
    _add_trip_times(rngs["expand"], trips, cust, cal)

    truth: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": asdict(size),
        "feedback": {
            "enabled": bool(feedback),
            "occupancy_to_pride": fb,
            "unit": "pride points per +10pp previous-month occupancy above 0.72",
        },
        "bad_rows_enabled": bool(bad_rows),
        "unknown_unit_code": hotels.bad_code,
    }
    bad: dict[str, dict[str, Any]] = {}

    # ---------------------------------------------------------------- interactions
    inter = _expand_interactions(rngs["expand"], trips, cust, cal)
    units_df = _units_table(rngs["units"], hotels, staff, trips, cal)
    bad["interactions.parquet"] = _write_interactions(
        out / "interactions.parquet", inter, cust, hotels, rngs["bad"], bad_rows
    )
    n_inter_rows = len(inter["ts"])
    del inter

    # ---------------------------------------------------------------- survey
    emp_df = _employee_frame(staff, hotels, cal)
    survey, pii, foreign = _make_survey(
        rngs["survey"],
        rngs["comments"],
        size.n_responses,
        trips,
        cust,
        hotels,
        staff,
        emp_df,
        cal,
    )
    survey, bad["cx_survey.sav"] = _plant_survey_bad_rows(
        rngs["bad"], survey, hotels.bad_code, bad_rows, excluded=pii["_rows"]
    )
    del pii["_rows"]
    _write_sav(out / "cx_survey.sav", survey, cal)

    # ---------------------------------------------------------------- customers
    cust_df = _customer_frame(cust, cal)
    cust_df, bad["customers.csv"] = _plant_customer_bad_rows(rngs["bad"], cust_df, bad_rows)
    _write_csv(cust_df, out / "customers.csv", sep=";", encoding="cp1252")
    seg_table = pa.table(
        {
            "guest_id": pa.array(cust.guest_id),
            "true_segment": pa.array(np.array([s.name for s in SEGMENTS], dtype=object)[cust.seg]),
        }
    )
    pq.write_table(seg_table, out / "customer_segments.parquet", compression="zstd")

    # ---------------------------------------------------------------- employees, units, network
    emp_out, bad["employees.csv"] = _plant_employee_bad_rows(
        rngs["bad"], emp_df, hotels.bad_code, bad_rows
    )
    _write_csv(emp_out, out / "employees.csv", sep=",", encoding="utf-8")
    _write_csv(units_df, out / "units.csv", sep=",", encoding="utf-8")
    net_df, influencers = _make_network(rngs["network"], staff, emp_df, cal)
    _write_csv(net_df, out / "network.csv", sep=",", encoding="utf-8")

    # ---------------------------------------------------------------- ground truth
    truth["files"] = {
        "customers": "customers.csv",
        "interactions": "interactions.parquet",
        "survey": "cx_survey.sav",
        "employees": "employees.csv",
        "units": "units.csv",
        "network": "network.csv",
        "customer_segments": "customer_segments.parquet",
    }
    truth["row_counts"] = {
        "customers.csv": len(cust_df),
        "interactions.parquet": n_inter_rows,
        "cx_survey.sav": len(survey),
        "employees.csv": len(emp_out),
        "units.csv": len(units_df),
        "network.csv": len(net_df),
        "customer_segments.parquet": size.n_customers,
    }
    truth["causal_model"] = _causal_model_truth()
    truth["driver_weights"] = DRIVER_WEIGHTS
    truth["driver_importance"] = {
        p: {k: round(v / sum(w.values()), 6) for k, v in w.items()}
        for p, w in DRIVER_WEIGHTS.items()
    }
    truth["strongest_driver"] = {p: max(w, key=w.__getitem__) for p, w in DRIVER_WEIGHTS.items()}
    truth["segments"] = {
        "file": "customer_segments.parquet",
        "columns": ["guest_id", "true_segment"],
        "definitions": {s.name: asdict(s) for s in SEGMENTS},
        "realised_shares": {
            s.name: round(float(np.mean(cust.seg == i)), 6) for i, s in enumerate(SEGMENTS)
        },
    }
    truth["influencers"] = influencers
    truth["consent_analytics"] = {
        "target": ANALYTICS_CONSENT,
        "realised": round(float(cust.consent_analytics.mean()), 6),
    }
    truth["uplift"] = _uplift_truth(trips, cust, cal)
    for name in ("community", "app"):
        truth["uplift"][name].update(
            _adoption_total_effect(seed, name, cust, hotels, staff, cal, scale)
        )
    truth["linkage"] = _linkage_truth(staff, trips, cal)
    truth["survey"] = {
        "planted_pii": pii,
        "foreign_language": foreign,
        "missing_codes": {"0": "not applicable", "99": "don't know"},
        "scales": {
            "q_recommend": [0, 10],
            "q_satisfaction": [1, 5],
            "q_effort": [1, 7],
            "attributes": [1, 10],
        },
        "q_effort_direction": "1 = very low effort (good), 7 = very high effort (bad)",
        "anonymous_share": ANONYMOUS_SHARE,
    }
    truth["employees"] = {
        "greet_by_name": "share (0-1) of the employee's observed guest contacts in the month "
        "in which the guest was greeted by name",
        "first_contact_resolution": "share (0-1) of guest requests resolved at first contact",
        "pride": "1-7 mean of six items (multiples of 1/6, rounded to 2 decimals)",
        "direct_identifiers": ["name"],
    }
    truth["units"] = {
        "checkin_minutes": "mean check-in duration of CRM-identified stays in the hotel-month "
        "(model expectation if none)",
        "mobile_checkin_share": "share of CRM-identified check-ins done in the app",
        "staff_turnover": "leavers / headcount of the month in employees.csv (clean rows)",
    }
    truth["bad_rows"] = bad
    truth["realised"] = {
        "trips": len(trips["cust"]),
        "stays": int((trips["outcome"] == 3).sum()),
        "trip_rate_scale": round(scale, 8),
    }
    truth = _jsonable(truth)
    (out / "ground_truth.json").write_text(
        json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return truth


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples recursively into JSON-native types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def _rep(idx: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeat ``idx`` by ``counts`` and return the within-group counter too."""
    counts = counts.astype(np.int64)
    tr = np.repeat(idx, counts)
    starts = np.cumsum(counts) - counts
    j = np.arange(len(tr), dtype=np.int64) - np.repeat(starts, counts)
    return tr, j


def _lognormal(rng: np.random.Generator, mean: np.ndarray | float, sdlog: float, n: int):
    """Log-normal draws with the given arithmetic mean."""
    return np.asarray(mean) * np.exp(rng.normal(-0.5 * sdlog**2, sdlog, n))


def _format_days(days: np.ndarray, fmt: str, missing: np.ndarray | None = None) -> np.ndarray:
    """Format integer days since 1970-01-01 (vectorised through the unique values)."""
    days = np.asarray(days, dtype=np.int64)
    uniq, inv = np.unique(days, return_inverse=True)
    txt = pd.to_datetime(uniq, unit="D").strftime(fmt).to_numpy(dtype=object)
    out = txt[inv]
    if missing is not None:
        out[missing] = ""
    return out


def _write_csv(df: pd.DataFrame, path: Path, *, sep: str, encoding: str) -> None:
    df.to_csv(path, sep=sep, encoding=encoding, index=False, lineterminator="\n")


class _Calendar:
    """Month grid of the observation window (days since 1970-01-01)."""

    def __init__(self, start: str, n_months: int) -> None:
        first = np.datetime64(start, "D").astype("datetime64[M]")
        months = first + np.arange(n_months + 1)
        self.n = n_months
        self.month_start = months.astype("datetime64[D]").astype(np.int64)
        self.dim = np.diff(self.month_start)
        self.calmonth = (months[:-1].astype(np.int64) % 12).astype(np.int64)
        self.labels = [str(m) for m in months[:-1]]
        self.start_day = int(self.month_start[0])
        self.end_day = int(self.month_start[-1])  # exclusive


class _NamePools:
    """First/last name pools per locale, built once with Faker."""

    def __init__(self, seed: int, n_per_locale: int = 2000) -> None:
        from faker import Faker

        self.first: list[np.ndarray] = []
        self.last: list[np.ndarray] = []
        self.first_slug: list[np.ndarray] = []
        self.last_slug: list[np.ndarray] = []
        for k, loc in enumerate(_LOCALES):
            fk = Faker(loc)
            fk.seed_instance(seed + k)
            firsts = _clean_names([fk.first_name() for _ in range(n_per_locale)])
            lasts = _clean_names([fk.last_name() for _ in range(n_per_locale)])
            self.first.append(np.array(firsts, dtype=object))
            self.last.append(np.array(lasts, dtype=object))
            self.first_slug.append(np.array([_slug(n) for n in firsts], dtype=object))
            self.last_slug.append(np.array([_slug(n) for n in lasts], dtype=object))

    def draw(
        self, rng: np.random.Generator, locale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw (first, last, first_slug, last_slug) object arrays for the given locales."""
        n = len(locale)
        first = np.empty(n, dtype=object)
        last = np.empty(n, dtype=object)
        fs = np.empty(n, dtype=object)
        ls = np.empty(n, dtype=object)
        uf = rng.random(n)
        ul = rng.random(n)
        for k in range(len(_LOCALES)):
            m = locale == k
            fi = (uf[m] * len(self.first[k])).astype(np.int64)
            li = (ul[m] * len(self.last[k])).astype(np.int64)
            first[m] = self.first[k][fi]
            last[m] = self.last[k][li]
            fs[m] = self.first_slug[k][fi]
            ls[m] = self.last_slug[k][li]
        return first, last, fs, ls


def _clean_names(names: list[str]) -> list[str]:
    out = []
    for name in dict.fromkeys(n.strip() for n in names):
        try:
            name.encode("cp1252")
        except UnicodeEncodeError:
            continue
        if name and _slug(name):
            out.append(name)
    return out


def _slug(name: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z]", "", ascii_.lower())


# --------------------------------------------------------------------------------------------
# Hotels and staff
# --------------------------------------------------------------------------------------------
@dataclass
class _Hotels:
    code: np.ndarray  # object, codes + bad code at index n
    name: list[str]
    region: np.ndarray  # int index into _HOTEL_REGIONS
    rooms: np.ndarray
    quality: np.ndarray
    base_adr: np.ndarray
    occ_effect: np.ndarray
    fixed: np.ndarray  # (n, n_att) fixed attribute shifts
    bad_code: str = ""

    @property
    def n(self) -> int:
        return len(self.rooms)


def _make_hotels(rng: np.random.Generator, n_units: int) -> _Hotels:
    width = max(2, len(str(n_units + 1)))
    codes = [f"H{i + 1:0{width}d}" for i in range(n_units)]
    bad_code = "H" + "9" * width
    region = np.arange(n_units) % len(_HOTEL_REGIONS)
    region = region[rng.permutation(n_units)]
    rooms = np.round(rng.uniform(80, 380, n_units)).astype(np.int64)
    quality = rng.normal(0, 1, n_units)
    city_u = rng.random(n_units)
    suffix_u = rng.integers(0, len(_HOTEL_SUFFIX), n_units)
    names: list[str] = []
    seen: dict[str, int] = {}
    for i in range(n_units):
        cities = _CITIES[_HOTEL_REGIONS[region[i]]]
        base = f"ROX {cities[int(city_u[i] * len(cities))]} {_HOTEL_SUFFIX[suffix_u[i]]}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} {seen[base]}")
    base_adr = (
        92.0
        * np.exp(0.10 * quality + rng.normal(0, 0.08, n_units))
        * np.where(region == _HOTEL_REGIONS.index("Central"), 1.25, 1.0)
    )
    occ_effect = rng.normal(0, OCC_HOTEL_SD, n_units)
    fixed = np.zeros((n_units, len(ATTRIBUTES)))
    for att, sd in ATT_HOTEL_SD.items():
        fixed[:, _A[att]] = rng.normal(0, sd, n_units)
    for att, b in ATT_PER_QUALITY.items():
        fixed[:, _A[att]] += b * quality
    return _Hotels(
        code=np.array([*codes, bad_code], dtype=object),
        name=names,
        region=region,
        rooms=rooms,
        quality=quality,
        base_adr=base_adr,
        occ_effect=occ_effect,
        fixed=fixed,
        bad_code=bad_code,
    )


@dataclass
class _Staff:
    # employee-month panel (clean rows)
    emp: np.ndarray
    hotel: np.ndarray
    team: np.ndarray
    t: np.ndarray
    role: np.ndarray
    tenure: np.ndarray
    pride: np.ndarray
    enps: np.ndarray
    engagement: np.ndarray
    greet: np.ndarray
    fcr: np.ndarray
    training: np.ndarray
    left: np.ndarray
    left_day: np.ndarray
    # per employee number
    first: np.ndarray
    last: np.ndarray
    # hotel x month
    desk_mean: np.ndarray
    shift: np.ndarray  # (n_units, n_months, n_att)
    occupancy: np.ndarray
    adr: np.ndarray
    turnover: np.ndarray
    nps_expected: np.ndarray
    extras: dict = field(default_factory=dict)


def _simulate_staff(
    rng: np.random.Generator,
    hotels: _Hotels,
    cal: _Calendar,
    n_employees: int,
    fb: float,
    pools: _NamePools,
) -> _Staff:
    nh, nt = hotels.n, cal.n
    counts = np.maximum(4, np.round(hotels.rooms / hotels.rooms.sum() * n_employees)).astype(int)
    slot_hotel = np.repeat(np.arange(nh), counts)
    n_slots = len(slot_hotel)
    rank = np.arange(n_slots) - np.repeat(np.cumsum(counts) - counts, counts)
    slot_team = rng.choice(len(TEAMS), n_slots, p=_TEAM_SHARES)
    slot_team[rank == 0] = TEAMS.index("management")
    slot_team[rank == 1] = TEAMS.index("front_desk")

    max_emp = n_slots * (nt + 1)
    locale = rng.choice(len(_LOCALES), max_emp, p=[0.75, 0.07, 0.06, 0.06, 0.06])
    first, last, _, _ = pools.draw(rng, locale)
    emp_re = rng.normal(0, PRIDE_EMPLOYEE_SD, max_emp)
    role_offsets = np.cumsum([0] + [len(r) for r in _ROLES])
    role_cum = [np.cumsum([p for _, p in r]) for r in _ROLES]
    role_u = rng.random(max_emp)

    def roles_for(emp_nums: np.ndarray, teams: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        out = np.empty(len(emp_nums), dtype=np.int64)
        for k in range(len(TEAMS)):
            m = teams == k
            idx = np.searchsorted(role_cum[k], role_u[emp_nums[m]] * role_cum[k][-1], "right")
            out[m] = role_offsets[k] + np.minimum(idx, len(_ROLES[k]) - 1)
        out[ranks == 0] = _GM_ROLE
        return out

    emp = np.arange(n_slots)
    next_emp = n_slots
    tenure = np.minimum(rng.geometric(1 / 30, n_slots) - 1, 240)
    role = roles_for(emp, slot_team, rank)

    fd = slot_team == TEAMS.index("front_desk")
    guest_facing = fd | (slot_team == TEAMS.index("food_beverage"))
    hk = slot_team == TEAMS.index("housekeeping")
    team_pride = np.asarray(PRIDE_TEAM)[slot_team]
    team_greet = np.asarray(GREET_TEAM)[slot_team]
    team_turn = np.asarray(TURN_TEAM)[slot_team]
    q = hotels.quality

    def hotel_mean(values: np.ndarray, mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        num = np.bincount(slot_hotel[mask], weights=values[mask], minlength=nh)
        den = np.bincount(slot_hotel[mask], minlength=nh)
        return np.where(den > 0, num / np.maximum(den, 1), fallback)

    desk_mean = np.zeros((nh, nt))
    fcr_fd_ht = np.zeros((nh, nt))
    turn_fd_ht = np.zeros((nh, nt))
    shift = np.zeros((nh, nt, len(ATTRIBUTES)))
    occupancy = np.zeros((nh, nt))
    turnover = np.zeros((nh, nt))
    nps_exp = np.zeros((nh, nt))
    adr = np.zeros((nh, nt))
    reputation = np.zeros(nh)
    w_bar = np.array(
        [(DRIVER_WEIGHTS["business"][a] + DRIVER_WEIGHTS["leisure"][a]) / 2 for a in ATTRIBUTES]
    )
    season_mix = 0.4 * SEASON_BUSINESS + 0.6 * SEASON_LEISURE
    rows: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "emp",
            "hotel",
            "team",
            "t",
            "role",
            "tenure",
            "pride",
            "enps",
            "engagement",
            "greet",
            "fcr",
            "training",
            "left",
            "left_day",
        )
    }
    hm_shock = rng.normal(0, PRIDE_HOTEL_MONTH_SD, nh)  # stationary start
    for t in range(nt):
        occ_prev = occupancy[:, t - 1] if t > 0 else np.full(nh, OCC_TARGET)
        if t > 0:
            hm_shock = PRIDE_HOTEL_AR * hm_shock + rng.normal(
                0, PRIDE_HOTEL_MONTH_SD * math.sqrt(1 - PRIDE_HOTEL_AR**2), nh
            )
        latent = (
            PRIDE_INTERCEPT
            + PRIDE_PER_QUALITY * q[slot_hotel]
            + emp_re[emp]
            + team_pride
            + PRIDE_NEW_HIRE * (tenure < 3)
            + hm_shock[slot_hotel]
            + fb * (occ_prev[slot_hotel] - OCC_TARGET) / 0.10
            + rng.normal(0, PRIDE_NOISE_SD, n_slots)
        )
        pride = np.round(np.round(np.clip(latent, 1, 7) * 6) / 6, 2)
        dp = pride - 4.5
        greet = np.round(
            _expit(
                GREET_INTERCEPT
                + GREET_PER_PRIDE * dp
                + team_greet
                + rng.normal(0, GREET_SD, n_slots)
            ),
            3,
        )
        fcr = np.round(
            _expit(
                FCR_INTERCEPT
                + FCR_PER_PRIDE * dp
                + FCR_PER_LOG_TENURE * np.log1p(tenure)
                + rng.normal(0, FCR_SD, n_slots)
            ),
            3,
        )
        engagement = np.round(
            np.clip(1 + (pride - 1) / 6 * 4 + rng.normal(0, 0.35, n_slots), 1, 5), 2
        )
        enps = np.clip(np.round(6.5 + 1.3 * (pride - 4.0) + rng.normal(0, 1.3, n_slots)), 0, 10)
        training = rng.poisson(np.where(tenure < 3, 8.0, 2.0))
        p_leave = _expit(
            TURN_INTERCEPT + TURN_PER_PRIDE * dp + team_turn + TURN_NEW_HIRE * (tenure < 6)
        )
        left = rng.random(n_slots) < p_leave
        left_day = cal.month_start[t] + rng.integers(0, cal.dim[t], n_slots)

        for key, val in (
            ("emp", emp.copy()),
            ("hotel", slot_hotel),
            ("team", slot_team),
            ("t", np.full(n_slots, t)),
            ("role", role.copy()),
            ("tenure", tenure.copy()),
            ("pride", pride),
            ("enps", enps.astype(np.int64)),
            ("engagement", engagement),
            ("greet", greet),
            ("fcr", fcr),
            ("training", training),
            ("left", left),
            ("left_day", left_day),
        ):
            rows[key].append(val)

        # hotel-month aggregates
        all_mask = np.ones(n_slots, dtype=bool)
        pride_all = hotel_mean(pride, all_mask, np.full(nh, PRIDE_INTERCEPT))
        greet_gf = hotel_mean(greet, guest_facing, np.full(nh, 0.5))
        fcr_fd = hotel_mean(fcr, fd, np.full(nh, 0.75))
        turn_fd = hotel_mean(left.astype(float), fd, np.zeros(nh))
        pride_hk = hotel_mean(pride, hk, pride_all)
        turnover[:, t] = hotel_mean(left.astype(float), all_mask, np.zeros(nh))
        fcr_fd_ht[:, t], turn_fd_ht[:, t] = fcr_fd, turn_fd
        desk_mean[:, t] = np.clip(
            DESK_BASE
            + DESK_PER_FCR * (fcr_fd - 0.75)
            + DESK_PER_FD_TURNOVER * turn_fd
            + DESK_PER_QUALITY * q,
            2.5,
            15.0,
        )
        s = hotels.fixed.copy()
        s[:, _A["staff_friendliness"]] += STAFF_PER_GREET * (greet_gf - 0.5)
        s[:, _A["cleanliness"]] += CLEAN_PER_HK_PRIDE * (pride_hk - 4.7)
        shift[:, t, :] = s
        exp_dur = 0.75 * desk_mean[:, t] + 0.25 * MOBILE_MEAN
        nps_exp[:, t] = s @ w_bar + w_bar[_A["checkin_speed"]] * CHECKIN_SPEED_PER_MINUTE * (
            exp_dur - 4.5
        )
        reputation = REP_PERSISTENCE * reputation + (1 - REP_PERSISTENCE) * (
            nps_exp[:, t] - nps_exp[:, t].mean()
        )
        cm = cal.calmonth[t]
        occupancy[:, t] = np.round(
            _expit(
                _logit(OCC_TARGET)
                + np.log(season_mix[cm])
                + hotels.occ_effect
                + OCC_PER_REPUTATION * reputation
                + rng.normal(0, OCC_NOISE_SD, nh)
            ),
            4,
        )
        adr[:, t] = hotels.base_adr * (1 + 0.2 * (SEASON_LEISURE[cm] - 1))

        # replacements for next month
        n_left = int(left.sum())
        emp = emp.copy()
        emp[left] = np.arange(next_emp, next_emp + n_left)
        next_emp += n_left
        tenure = np.where(left, 0, tenure + 1)
        role = np.where(left, roles_for(emp, slot_team, rank), role)

    panel = {k: np.concatenate(v) for k, v in rows.items()}
    return _Staff(
        **panel,
        first=first,
        last=last,
        desk_mean=desk_mean,
        shift=shift,
        occupancy=occupancy,
        adr=adr,
        turnover=turnover,
        nps_expected=nps_exp,
        extras={
            "slot_hotel": slot_hotel,
            "slot_team": slot_team,
            "n_emp": next_emp,
            "fcr_front_desk": fcr_fd_ht,
            "turnover_front_desk": turn_fd_ht,
        },
    )


def _employee_frame(staff: _Staff, hotels: _Hotels, cal: _Calendar) -> pd.DataFrame:
    """Clean employees.csv table (before planted bad rows)."""
    n_emp = staff.extras["n_emp"]
    width = max(5, len(str(n_emp)))
    emp_ids = np.array([f"E{i + 1:0{width}d}" for i in range(n_emp)], dtype=object)
    names = np.array(
        [f"{a} {b}" for a, b in zip(staff.first[:n_emp], staff.last[:n_emp], strict=True)],
        dtype=object,
    )
    return pd.DataFrame(
        {
            "emp_id": emp_ids[staff.emp],
            "name": names[staff.emp],
            "hotel_code": hotels.code[staff.hotel],
            "team": np.array(TEAMS, dtype=object)[staff.team],
            "month": np.array(cal.labels, dtype=object)[staff.t],
            "role": np.array(_ROLE_NAMES, dtype=object)[staff.role],
            "tenure_months": staff.tenure.astype(np.int64),
            "pride": staff.pride,
            "enps": staff.enps.astype(np.int64),
            "engagement": staff.engagement,
            "greet_by_name": staff.greet,
            "first_contact_resolution": staff.fcr,
            "training_hours": staff.training.astype(np.int64),
            "left": staff.left.astype(np.int64),
            "left_date": _format_days(staff.left_day, "%Y-%m-%d", missing=~staff.left),
        }
    )


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------
@dataclass
class _Customers:
    guest_id: np.ndarray
    seg: np.ndarray
    base: np.ndarray
    business_share: np.ndarray
    spend: np.ndarray
    fav_hotel: np.ndarray
    rater: np.ndarray
    joined: np.ndarray
    app_day: np.ndarray  # install day, large sentinel if never
    comm_day: np.ndarray
    consent_analytics: np.ndarray
    extra: dict = field(default_factory=dict)

    _NEVER = np.iinfo(np.int64).max // 4

    def take(self, idx: np.ndarray) -> _Customers:
        return _Customers(
            guest_id=self.guest_id[idx],
            seg=self.seg[idx],
            base=self.base[idx],
            business_share=self.business_share[idx],
            spend=self.spend[idx],
            fav_hotel=self.fav_hotel[idx],
            rater=self.rater[idx],
            joined=self.joined[idx],
            app_day=self.app_day[idx],
            comm_day=self.comm_day[idx],
            consent_analytics=self.consent_analytics[idx],
        )


def _make_customers(
    rng: np.random.Generator, n: int, cal: _Calendar, hotels: _Hotels, pools: _NamePools
) -> _Customers:
    never = _Customers._NEVER
    # sign-up dates: 55% before the window (up to six years), 45% during the window
    before = rng.random(n) < 0.55
    joined = np.where(
        before,
        cal.start_day - 1 - rng.integers(0, 6 * 365, n),
        cal.start_day + rng.integers(0, cal.end_day - cal.start_day - 1, n),
    )
    joined = np.sort(joined)  # guest ids follow sign-up order
    seg = rng.choice(len(SEGMENTS), n, p=[s.share for s in SEGMENTS])
    segp = {
        f: np.array([getattr(s, f) for s in SEGMENTS])
        for f in Segment.__dataclass_fields__
        if f not in ("name", "channel_mix")
    }
    log_base = np.log(segp["base_rate"][seg]) + rng.normal(
        -0.5 * BASE_RATE_SDLOG**2, BASE_RATE_SDLOG, n
    )
    base = np.exp(log_base)
    z_base = (log_base - log_base.mean()) / log_base.std()
    spend = segp["spend"][seg] * np.exp(rng.normal(0, 0.2, n))
    business_share = segp["business_share"][seg]

    # demographics, weakly tilted by segment
    z_age_levels = (np.arange(len(AGE_BANDS)) - 2.5) / 1.7
    age_p = _AGE_BASE[None, :] * np.exp(segp["age_tilt"][:, None] * z_age_levels[None, :])
    age_p /= age_p.sum(1, keepdims=True)
    age = (rng.random(n)[:, None] > np.cumsum(age_p, 1)[seg]).sum(1)
    age = np.minimum(age, len(AGE_BANDS) - 1)
    reg_base = np.array([0.22, 0.22, 0.15, 0.15, 0.18, 0.08])
    reg_p = np.tile(reg_base, (len(SEGMENTS), 1))
    reg_p[:, -1] *= np.exp(segp["international_tilt"])
    reg_p /= reg_p.sum(1, keepdims=True)
    region = (rng.random(n)[:, None] > np.cumsum(reg_p, 1)[seg]).sum(1)
    region = np.minimum(region, len(_CUSTOMER_REGIONS) - 1)

    intl = region == len(_CUSTOMER_REGIONS) - 1
    loc_p_uk = np.cumsum([0.86, 0.035, 0.035, 0.035, 0.035])
    loc_p_intl = np.cumsum([0.10, 0.30, 0.30, 0.15, 0.15])
    u = rng.random(n)
    locale = np.where(
        intl,
        np.searchsorted(loc_p_intl, u * loc_p_intl[-1], "right"),
        np.searchsorted(loc_p_uk, u * loc_p_uk[-1], "right"),
    )
    locale = np.minimum(locale, len(_LOCALES) - 1)
    first, last, fslug, lslug = pools.draw(rng, locale)

    # app and community: self-selected on the pre-existing frequency
    z_age = z_age_levels[age]
    app_user = rng.random(n) < _expit(
        segp["app_logit"][seg] + APP_SELECTION * z_base - 0.25 * z_age
    )
    comm = rng.random(n) < _expit(
        COMMUNITY_INTERCEPT + segp["community_logit"][seg] + COMMUNITY_SELECTION * z_base
    )

    def adoption_day(lookback: int) -> np.ndarray:
        lo = np.maximum(joined, cal.start_day - lookback)
        hi = np.maximum(lo + 1, cal.end_day - 14)
        return lo + (rng.random(n) * (hi - lo)).astype(np.int64)

    at_signup = rng.random(n) < segp["app_at_signup"][seg]
    app_day = np.where(app_user, np.where(at_signup, joined, adoption_day(540)), never)
    comm_day = np.where(comm, adoption_day(120), never)

    consent_a = rng.random(n) < ANALYTICS_CONSENT
    consent_m = rng.random(n) < np.where(consent_a, 0.6, 0.15)

    # loyalty tier from frequency, spend and membership length
    score = (
        log_base
        + 0.6 * np.log(spend)
        + 0.1 * (cal.start_day - joined) / 365
        + rng.normal(0, 0.4, n)
    )
    cuts = np.quantile(score, [0.55, 0.80, 0.94])
    tier = np.searchsorted(cuts, score, "right")

    referred = (np.arange(n) > 0) & (rng.random(n) < 0.07)
    ref_idx = (rng.random(n) * np.arange(n)).astype(np.int64)

    width = max(7, len(str(n)))
    guest_id = np.array([f"G{i + 1:0{width}d}" for i in range(n)], dtype=object)

    fav_hotel = rng.choice(hotels.n, n, p=hotels.rooms / hotels.rooms.sum())
    rater = rng.normal(0, HALO_RATER_SD, n)

    # contact details
    fmt = rng.integers(0, 4, n)
    nn = rng.integers(1, 100, n)
    yy = rng.integers(50, 100, n)
    corp = (business_share > 0.5) & (rng.random(n) < 0.3)
    dom_u = rng.random(n)
    domains = np.empty(n, dtype=object)
    for k, doms in enumerate(_EMAIL_DOMAINS):
        m = locale == k
        domains[m] = np.array(doms, dtype=object)[(dom_u[m] * len(doms)).astype(np.int64)]
    cd = np.array(_CORPORATE_DOMAINS, dtype=object)
    domains[corp] = cd[(dom_u[corp] * len(cd)).astype(np.int64)]
    email = [
        (
            f"{f}.{la}"
            if k == 0
            else f"{f}{la}{a}"
            if k == 1
            else f"{f[0]}.{la}"
            if k == 2
            else f"{f}_{la}{b}"
        )
        + "@"
        + d
        for f, la, k, a, b, d in zip(fslug, lslug, fmt, nn, yy, domains, strict=True)
    ]
    phone = _phones(rng, locale)

    extra = {
        "full_name": np.array([f"{a} {b}" for a, b in zip(first, last, strict=True)], dtype=object),
        "email": np.array(email, dtype=object),
        "phone": phone,
        "home_region": region,
        "age_band": age,
        "tier": tier,
        "app_user": app_user,
        "comm": comm,
        "consent_marketing": consent_m,
        "referred": referred,
        "ref_idx": ref_idx,
        "z_base": z_base,
    }
    cust = _Customers(
        guest_id=guest_id,
        seg=seg,
        base=base,
        business_share=business_share,
        spend=spend,
        fav_hotel=fav_hotel,
        rater=rater,
        joined=joined,
        app_day=app_day,
        comm_day=comm_day,
        consent_analytics=consent_a,
    )
    cust.extra = extra
    return cust


def _phones(rng: np.random.Generator, locale: np.ndarray) -> np.ndarray:
    n = len(locale)
    cc = np.array(_COUNTRY_CODE, dtype=object)[locale]
    a = rng.integers(7000, 8000, n)
    b = rng.integers(0, 1_000_000, n)
    fmt = rng.choice(5, n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    out = [
        f"+{c} {x} {y:06d}"
        if k == 0
        else f"0{x} {y:06d}"
        if k == 1
        else f"+{c}{x}{y:06d}"
        if k == 2
        else f"(0){x}-{y // 1000:03d}-{y % 1000:03d}"
        if k == 3
        else f"00{c} {x} {y:06d}"
        for c, x, y, k in zip(cc, a, b, fmt, strict=True)
    ]
    return np.array(out, dtype=object)


def _customer_frame(cust: _Customers, cal: _Calendar) -> pd.DataFrame:
    e = cust.extra
    yn = np.array(["N", "Y"], dtype=object)
    never = cust.app_day >= _Customers._NEVER
    never_c = cust.comm_day >= _Customers._NEVER
    return pd.DataFrame(
        {
            "guest_id": cust.guest_id,
            "full_name": e["full_name"],
            "email": e["email"],
            "phone": e["phone"],
            "joined": _format_days(cust.joined, "%d/%m/%Y"),
            "home_region": np.array(_CUSTOMER_REGIONS, dtype=object)[e["home_region"]],
            "age_band": np.array(AGE_BANDS, dtype=object)[e["age_band"]],
            "loyalty_tier": np.array(LOYALTY_TIERS, dtype=object)[e["tier"]],
            "is_community_member": yn[e["comm"].astype(np.int64)],
            "community_join_date": _format_days(
                np.where(never_c, 0, cust.comm_day), "%d/%m/%Y", missing=never_c
            ),
            "app_user": yn[e["app_user"].astype(np.int64)],
            "app_install_date": _format_days(
                np.where(never, 0, cust.app_day), "%d/%m/%Y", missing=never
            ),
            "referred_by": np.where(e["referred"], cust.guest_id[e["ref_idx"]], ""),
            "consent_analytics": yn[cust.consent_analytics.astype(np.int64)],
            "consent_marketing": yn[e["consent_marketing"].astype(np.int64)],
        }
    )


# --------------------------------------------------------------------------------------------
# Trips (monthly simulation with NPS feedback on return rates)
# --------------------------------------------------------------------------------------------
def _simulate_trips(
    rng: np.random.Generator,
    cust: _Customers,
    hotels: _Hotels,
    staff: _Staff,
    cal: _Calendar,
    scale: float,
    rates: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Simulate the trips month by month; ``rates``, if given, receives each month's expected
    trip counts per customer (the Poisson means), which use no random draw of their own."""
    n = len(cust.base)
    last_nps = np.full(n, NPS_REF)
    room_p = hotels.rooms / hotels.rooms.sum()
    chan_cum = np.cumsum(np.array([s.channel_mix for s in SEGMENTS]), 1)
    chan_cum /= chan_cum[:, -1:]
    att_base = np.array([ATT_BASE[a] for a in ATTRIBUTES])
    w_bus = np.array([DRIVER_WEIGHTS["business"][a] for a in ATTRIBUTES])
    w_lei = np.array([DRIVER_WEIGHTS["leisure"][a] for a in ATTRIBUTES])
    ease = np.asarray(BOOKING_EASE_BY_CHANNEL)
    nights_factor = np.array([s.nights_factor for s in SEGMENTS])
    parts: list[dict[str, np.ndarray]] = []
    for t in range(cal.n):
        ms, me = cal.month_start[t], cal.month_start[t + 1]
        lo = np.maximum(cust.joined, ms)
        frac = np.clip((me - lo) / cal.dim[t], 0.0, 1.0)
        member = cust.comm_day < ms
        app = cust.app_day < ms
        cm = cal.calmonth[t]
        season = (
            cust.business_share * SEASON_BUSINESS[cm]
            + (1 - cust.business_share) * SEASON_LEISURE[cm]
        )
        lam = (
            scale
            * cust.base
            * frac
            * season
            * np.exp(
                RETURN_PER_NPS * (last_nps - NPS_REF) + COMMUNITY_UPLIFT * member + APP_UPLIFT * app
            )
        )
        if rates is not None:
            rates.append(lam)
        k = rng.poisson(lam)
        nz = np.flatnonzero(k)
        c = np.repeat(nz, k[nz])
        m = len(c)
        if m == 0:
            continue
        arrival = lo[c] + (rng.random(m) * (me - lo[c])).astype(np.int64)
        business = rng.random(m) < cust.business_share[c]
        p_fav = np.where(business, 0.35, 0.6)
        hotel = np.where(
            rng.random(m) < p_fav, cust.fav_hotel[c], rng.choice(hotels.n, m, p=room_p)
        )
        chan = (rng.random(m)[:, None] > chan_cum[cust.seg[c]]).sum(1)
        chan = np.minimum(chan, 3)
        has_app = cust.app_day[c] <= arrival
        chan = np.where((chan == 1) & ~has_app, 0, chan)
        walk_in = chan == 3
        nights = np.minimum(
            1 + rng.poisson(np.where(business, 0.7, 1.8) * nights_factor[cust.seg[c]]), 14
        )
        u = rng.random(m)
        outcome = np.select(
            [
                u < P_STOP_DISCOVER,
                u < P_STOP_DISCOVER + P_BOOK_ABANDON,
                u < P_STOP_DISCOVER + P_BOOK_ABANDON + P_NO_SHOW,
            ],
            [0, 1, 2],
            3,
        )
        outcome = np.where(walk_in, 3, outcome)
        stay = outcome == 3
        adr = (
            staff.adr[hotel, t]
            * cust.spend[c]
            * np.where(business, 1.1, 1.0)
            * np.exp(rng.normal(0, 0.08, m))
        )
        mobile = (
            stay
            & has_app
            & (
                rng.random(m)
                < np.where(business, MOBILE_UPTAKE["business"], MOBILE_UPTAKE["leisure"])
            )
        )
        dur = np.where(
            mobile,
            _lognormal(rng, MOBILE_MEAN, MOBILE_SDLOG, m),
            _lognormal(rng, staff.desk_mean[hotel, t], DESK_SDLOG, m),
        )
        dur = np.maximum(np.round(dur, 1), 0.3)
        # ratings for every trip (only meaningful for stays)
        halo = cust.rater[c] + rng.normal(0, HALO_STAY_SD, m)
        mu = att_base[None, :] + staff.shift[hotel, t, :] + HALO_LOADING * halo[:, None]
        mu[:, _A["checkin_speed"]] += CHECKIN_SPEED_PER_MINUTE * dur
        mu[:, _A["booking_ease"]] += ease[chan]
        lat = mu + rng.normal(0, ATT_NOISE_SD, (m, len(ATTRIBUTES)))
        ratings = np.clip(np.round(lat), 1, 10).astype(np.int8)
        w = np.where(business[:, None], w_bus[None, :], w_lei[None, :])
        nps_lat = (
            NPS_INTERCEPT + ((ratings - NPS_CENTER) * w).sum(1) + rng.normal(0, NPS_NOISE_SD, m)
        )
        nps = np.clip(np.round(nps_lat), 0, 10).astype(np.int8)
        csat = np.clip(
            np.round(1 + 4 * _expit((nps_lat - 6.5) / 1.6) + rng.normal(0, 0.45, m)), 1, 5
        ).astype(np.int8)
        ces = np.clip(
            np.round(
                2.6
                + 0.30 * (dur - 3) * ~mobile
                - 0.35 * (ratings[:, _A["booking_ease"]] - 7)
                - 0.15 * (nps_lat - 7)
                + rng.normal(0, 0.9, m)
            ),
            1,
            7,
        ).astype(np.int8)
        # journey length
        n_disc = np.where(walk_in, 0, 1 + rng.poisson(0.6, m))
        n_extra = np.where(stay, rng.poisson(0.5 * nights), 0)
        post = stay & (rng.random(m) < P_POST_STAY)
        n_rows = n_disc + (outcome >= 1) + ((outcome >= 2) & ~walk_in) + stay * (3 + n_extra) + post
        # the latest stay of the month updates the guest's return propensity
        s_idx = np.flatnonzero(stay)
        if len(s_idx):
            order = s_idx[np.lexsort((arrival[s_idx], c[s_idx]))]
            cs = c[order]
            last = np.r_[cs[1:] != cs[:-1], True]
            last_nps[cs[last]] = nps[order[last]]
        parts.append(
            {
                "cust": c.astype(np.int64),
                "t": np.full(m, t, dtype=np.int16),
                "hotel": hotel.astype(np.int64),
                "arrival": arrival.astype(np.int64),
                "business": business,
                "chan": chan.astype(np.int8),
                "has_app": has_app,
                "nights": nights.astype(np.int16),
                "outcome": outcome.astype(np.int8),
                "adr": adr,
                "mobile": mobile,
                "dur": dur,
                "ratings": ratings,
                "rating_mu": mu.astype(np.float32),
                "nps": nps,
                "nps_lat": nps_lat,
                "csat": csat,
                "ces": ces,
                "n_disc": n_disc.astype(np.int16),
                "n_extra": n_extra.astype(np.int16),
                "post": post,
                "n_rows": n_rows.astype(np.int64),
            }
        )
    if not parts:
        raise ValueError("the sample size produced no trips; increase n_interactions")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _add_trip_times(
    rng: np.random.Generator, trips: dict[str, np.ndarray], cust: _Customers, cal: _Calendar
) -> None:
    """Add booking, arrival and check-out timestamps (seconds since epoch) to ``trips``.

    Nothing happens before the window start or before the guest signed up: earlier bookings
    are squeezed into ``[max(start, signup), arrival)``.
    """
    m = len(trips["cust"])
    business = trips["business"]
    walk_in = trips["chan"] == 3
    tod = np.where(
        business,
        rng.integers(16 * 3600, 22 * 3600 + 1800, m),
        rng.integers(14 * 3600, 20 * 3600, m),
    )
    arrival_s = trips["arrival"] * 86400 + tod
    lead_factor = np.array([s.lead_factor for s in SEGMENTS])[cust.seg[trips["cust"]]]
    lead = np.floor(rng.exponential(np.where(business, 7.0, 35.0) * lead_factor)).astype(np.int64)
    book_s = arrival_s - lead * 86400 - rng.integers(0, 12 * 3600, m)
    start_s = np.maximum(cal.start_day, cust.joined[trips["cust"]]) * 86400
    trips["floor_s"] = start_s
    squeezed = start_s + ((arrival_s - start_s) * rng.uniform(0.0, 0.9, m)).astype(np.int64)
    book_s = np.where(book_s < start_s, squeezed, book_s)
    book_s = np.where(walk_in, arrival_s - rng.integers(300, 1200, m), book_s)
    book_s = np.minimum(book_s, arrival_s - 300)
    checkout_s = (trips["arrival"] + trips["nights"]) * 86400 + rng.integers(
        7 * 3600, 11 * 3600 + 1800, m
    )
    trips["arrival_s"] = arrival_s
    trips["book_s"] = book_s
    trips["checkout_s"] = checkout_s


def _expand_interactions(
    rng: np.random.Generator, trips: dict[str, np.ndarray], cust: _Customers, cal: _Calendar
) -> dict[str, np.ndarray]:
    """Expand trips into journey events sorted by timestamp."""
    ti = np.arange(len(trips["cust"]))
    outcome, chan, has_app = trips["outcome"], trips["chan"], trips["has_app"]
    walk_in = chan == 3
    stay = outcome == 3
    blocks: list[dict[str, np.ndarray]] = []
    nan = np.nan

    def block(tr, tp, ts, completed, revenue, duration):
        blocks.append(
            {
                "tr": tr,
                "tp": tp.astype(np.int8),
                "ts": ts.astype(np.int64),
                "completed": completed.astype(bool),
                "revenue": np.round(revenue, 2).astype(np.float64),
                "duration": np.round(duration, 1).astype(np.float64),
            }
        )

    # discover
    tr, j = _rep(ti, trips["n_disc"])
    k = len(tr)
    c = chan[tr]
    gap = rng.uniform(0.05, 1.5, k) * 86400
    book_s = trips["book_s"][tr]
    start_s = trips["floor_s"][tr]
    ts = book_s - (j + 1) * gap
    squeezed = start_s + (book_s - start_s) * rng.uniform(0.05, 0.95, k)
    ts = np.where(ts < start_s, squeezed, ts)
    dmean = np.array([6.0, 3.0, 5.0, 1.0])[c]
    block(tr, _DISCOVER_TP[c], ts, outcome[tr] >= 1, np.zeros(k), _lognormal(rng, dmean, 0.5, k))
    # book
    tr = ti[outcome >= 1]
    k = len(tr)
    done = outcome[tr] >= 2
    rev = np.where(done, trips["nights"][tr] * trips["adr"][tr], 0.0)
    dmean = np.array([7.0, 4.0, 9.0, 5.0])[chan[tr]]
    block(tr, _BOOK_TP[chan[tr]], trips["book_s"][tr], done, rev, _lognormal(rng, dmean, 0.4, k))
    # pre-arrival
    tr = ti[(outcome >= 2) & ~walk_in]
    k = len(tr)
    f = rng.uniform(0.6, 0.97, k)
    ts = trips["book_s"][tr] + (trips["arrival_s"][tr] - trips["book_s"][tr]) * f
    tp = np.where(has_app[tr], _TP_INDEX["app_pre_arrival"], _TP_INDEX["pre_arrival_email"])
    block(tr, tp, ts, outcome[tr] == 3, np.zeros(k), _lognormal(rng, 1.0, 0.5, k))
    # check-in
    tr = ti[stay]
    k = len(tr)
    tp = np.where(trips["mobile"][tr], _TP_INDEX["mobile_checkin"], _TP_INDEX["front_desk_checkin"])
    block(tr, tp, trips["arrival_s"][tr], np.ones(k, bool), np.zeros(k), trips["dur"][tr])
    # stay: one room row plus extras
    tr, j = _rep(ti[stay], 1 + trips["n_extra"][stay])
    k = len(tr)
    u = rng.random(k)
    extra_tp = np.select(
        [u < 0.55, u < 0.80],
        [_TP_INDEX["restaurant"], _TP_INDEX["room_service"]],
        _TP_INDEX["app_room_request"],
    )
    extra_tp = np.where(
        (extra_tp == _TP_INDEX["app_room_request"]) & ~has_app[tr],
        _TP_INDEX["restaurant"],
        extra_tp,
    )
    tp = np.where(j == 0, _TP_INDEX["room"], extra_tp)
    a_s, co_s = trips["arrival_s"][tr], trips["checkout_s"][tr]
    ts = np.where(
        j == 0,
        a_s + (trips["dur"][tr] * 60).astype(np.int64) + 300,
        a_s + 1800 + (rng.random(k) * (co_s - a_s - 3600)).astype(np.int64),
    )
    spend = cust.spend[trips["cust"][tr]]
    rev = np.select(
        [
            tp == _TP_INDEX["restaurant"],
            tp == _TP_INDEX["room_service"],
            tp == _TP_INDEX["app_room_request"],
        ],
        [
            rng.uniform(25, 90, k) * spend,
            rng.uniform(12, 45, k) * spend,
            rng.choice([0.0, 15.0, 25.0], k),
        ],
        0.0,
    )
    dur = np.select(
        [
            tp == _TP_INDEX["restaurant"],
            tp == _TP_INDEX["room_service"],
            tp == _TP_INDEX["app_room_request"],
        ],
        [
            _lognormal(rng, 55.0, 0.3, k),
            _lognormal(rng, 25.0, 0.3, k),
            _lognormal(rng, 2.0, 0.4, k),
        ],
        nan,
    )
    block(tr, tp, ts, np.ones(k, bool), rev, dur)
    # check-out
    tr = ti[stay]
    k = len(tr)
    mob = trips["mobile"][tr]
    tp = np.where(mob, _TP_INDEX["app_checkout"], _TP_INDEX["checkout_desk"])
    dur = np.where(mob, _lognormal(rng, 1.0, 0.3, k), _lognormal(rng, 4.0, 0.4, k))
    block(tr, tp, trips["checkout_s"][tr], np.ones(k, bool), np.zeros(k), dur)
    # post-stay
    tr = ti[trips["post"]]
    k = len(tr)
    tp = np.where(has_app[tr], _TP_INDEX["app_review"], _TP_INDEX["post_stay_email"])
    ts = trips["checkout_s"][tr] + rng.integers(86400, 4 * 86400, k)
    done = rng.random(k) < 0.45
    block(tr, tp, ts, done, np.zeros(k), np.where(done, _lognormal(rng, 2.0, 0.5, k), nan))

    cols = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    blocks.clear()
    order = np.argsort(cols["ts"], kind="stable")
    out = {key: v[order] for key, v in cols.items()}
    del cols
    out["cust"] = trips["cust"][out["tr"]]
    out["hotel"] = trips["hotel"][out["tr"]]
    return out


def _write_interactions(
    path: Path,
    inter: dict[str, np.ndarray],
    cust: _Customers,
    hotels: _Hotels,
    rng: np.random.Generator,
    bad_rows: bool,
) -> dict[str, Any]:
    n = len(inter["ts"])
    hotel = inter["hotel"].copy()
    bad: dict[str, Any] = {}
    if bad_rows:
        k = _n_bad(n, BAD_RATES["interactions.parquet"]["unknown_unit"])
        rows = np.sort(rng.choice(n, k, replace=False))
        hotel[rows] = hotels.n  # index of the bad code
        bad["unknown_unit"] = {
            "count": k,
            "rows": rows,
            "column": "hotel_code",
            "value": hotels.bad_code,
        }

    def dict_col(idx: np.ndarray, values) -> pa.Array:
        arr = pa.DictionaryArray.from_arrays(
            pa.array(idx.astype(np.int32)), pa.array(list(values), type=pa.string())
        )
        return arr.dictionary_decode()

    tp = inter["tp"]
    table = pa.table(
        {
            "guest_id": pa.array(cust.guest_id, type=pa.string()).take(pa.array(inter["cust"])),
            "ts": pa.array(inter["ts"] * 1_000_000, type=pa.timestamp("us")),
            "hotel_code": dict_col(hotel, hotels.code),
            "channel": dict_col(_TP_CHANNEL[tp], CHANNELS),
            "stage": dict_col(_TP_STAGE[tp], STAGES),
            "touchpoint": dict_col(tp, [t[0] for t in TOUCHPOINTS]),
            "completed": pa.array(inter["completed"]),
            "revenue": pa.array(inter["revenue"]),
            "duration_min": pa.array(inter["duration"], from_pandas=True),
        }
    )
    pq.write_table(table, path, compression="zstd")
    return bad


def _units_table(
    rng: np.random.Generator,
    hotels: _Hotels,
    staff: _Staff,
    trips: dict[str, np.ndarray],
    cal: _Calendar,
) -> pd.DataFrame:
    nh, nt = hotels.n, cal.n
    stay = trips["outcome"] == 3
    key = trips["hotel"][stay] * nt + trips["t"][stay]
    cnt = np.bincount(key, minlength=nh * nt).reshape(nh, nt)
    dsum = np.bincount(key, weights=trips["dur"][stay], minlength=nh * nt).reshape(nh, nt)
    msum = np.bincount(key, weights=trips["mobile"][stay], minlength=nh * nt).reshape(nh, nt)
    checkin = np.where(cnt > 0, dsum / np.maximum(cnt, 1), staff.desk_mean)
    mobile_share = np.where(cnt > 0, msum / np.maximum(cnt, 1), 0.0)
    hh, tt = np.meshgrid(np.arange(nh), np.arange(nt), indexing="ij")
    hh, tt = hh.ravel(), tt.ravel()
    occ = staff.occupancy[hh, tt]
    revenue = (
        hotels.rooms[hh]
        * cal.dim[tt]
        * occ
        * staff.adr[hh, tt]
        * REVENUE_OTHER_FACTOR
        * np.exp(rng.normal(0, 0.02, len(hh)))
    )
    acq = 4000 + 0.07 * revenue * np.exp(rng.normal(0, 0.15, len(hh)))
    return pd.DataFrame(
        {
            "hotel_code": hotels.code[hh],
            "month": np.array(cal.labels, dtype=object)[tt],
            "hotel_name": np.array(hotels.name, dtype=object)[hh],
            "region": np.array(_HOTEL_REGIONS, dtype=object)[hotels.region[hh]],
            "rooms": hotels.rooms[hh],
            "occupancy": occ,
            "revenue": np.round(revenue, 2),
            "acquisition_cost": np.round(acq, 2),
            "checkin_minutes": np.round(checkin.ravel(), 2),
            "staff_turnover": np.round(staff.turnover.ravel(), 4),
            "mobile_checkin_share": np.round(mobile_share.ravel(), 4),
        }
    )


# --------------------------------------------------------------------------------------------
# Survey
# --------------------------------------------------------------------------------------------
_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "checkin_speed": (
        ("Waited ages at check-in.", "The check-in queue was far too long.", "Check-in took forever."),
        ("Check-in was quick and painless.", "Super fast check-in.", "In and out of reception in two minutes."),
    ),
    "cleanliness": (
        ("The room was not clean.", "Found hair in the bathroom.", "Dusty room and a stained carpet."),
        ("Spotless room.", "Everything was very clean.", "The bathroom was spotless."),
    ),
    "staff_friendliness": (
        ("Staff were rude.", "Reception staff seemed uninterested.", "Nobody smiled at the desk."),
        ("Lovely, friendly staff.", "The team greeted us by name.", "Staff went out of their way to help."),
    ),
    "room_comfort": (
        ("The bed was uncomfortable.", "Flat pillows and a stuffy room."),
        ("Very comfortable bed.", "Slept really well, great bed."),
    ),
    "breakfast": (
        ("Breakfast was disappointing.", "Cold breakfast and not much choice."),
        ("Great breakfast.", "Excellent breakfast selection."),
    ),
    "wifi": (
        ("The wifi kept dropping.", "Wifi was too slow to work."),
        ("Fast wifi.", "Wifi worked perfectly for video calls."),
    ),
    "value": (
        ("Overpriced for what you get.", "Poor value for money."),
        ("Great value for money.", "Good price for the quality."),
    ),
    "location": (
        ("Awkward location, far from everything.", "Hard to get to."),
        ("Perfect location.", "Great location near the station."),
    ),
    "booking_ease": (
        ("The booking process was confusing.", "Booking online was a pain."),
        ("Booking was really easy.", "Easy to book in the app."),
    ),
    "quietness": (
        ("Very noisy room.", "Could hear the street all night."),
        ("Lovely quiet room.", "Nice and quiet."),
    ),
}  # fmt: skip
_GENERIC = (
    ("Will not be coming back.", "Disappointing stay."),
    ("Decent stay overall.", "It was fine."),
    ("Would definitely stay again.", "Great stay overall."),
)
_FOREIGN: dict[str, dict[str, tuple[str, str]]] = {
    "de": {
        "checkin_speed": ("Ewig beim Check-in gewartet.", "Der Check-in ging sehr schnell."),
        "cleanliness": ("Das Zimmer war nicht sauber.", "Das Zimmer war blitzsauber."),
        "staff_friendliness": ("Das Personal war unfreundlich.", "Sehr freundliches Personal."),
        "_generic": ("Leider enttäuschend.", "Wir kommen gerne wieder."),
    },
    "fr": {
        "checkin_speed": (
            "Attente interminable à l'enregistrement.",
            "Enregistrement très rapide.",
        ),
        "cleanliness": ("La chambre n'était pas propre.", "Chambre impeccable."),
        "staff_friendliness": ("Personnel désagréable.", "Personnel très accueillant."),
        "_generic": ("Séjour décevant.", "Nous reviendrons avec plaisir."),
    },
}


def _make_survey(
    rng: np.random.Generator,
    crng: np.random.Generator,
    n_resp: int,
    trips: dict[str, np.ndarray],
    cust: _Customers,
    hotels: _Hotels,
    staff: _Staff,
    emp_df: pd.DataFrame,
    cal: _Calendar,
) -> tuple[pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    stays = np.flatnonzero(trips["outcome"] == 3)
    nps = trips["nps"][stays]
    w = (
        np.where(trips["business"][stays], 0.7, 1.0)
        * np.where((nps <= 6) | (nps >= 9), 1.25, 1.0)
        * np.where(trips["has_app"][stays], 1.2, 1.0)
    )
    if n_resp <= len(stays):
        key = np.log(rng.random(len(stays))) / w
        pick = np.argpartition(-key, n_resp - 1)[:n_resp]
    else:
        pick = rng.choice(len(stays), n_resp, replace=True, p=w / w.sum())
    pw = w[pick]
    tr = stays[pick]
    n = len(tr)
    transactional = rng.random(n) < TRANSACTIONAL_SHARE
    delay = np.where(transactional, 1 + rng.poisson(1.0, n), 3 + rng.poisson(10.0, n))
    resp_day = trips["checkout_s"][tr] // 86400 + np.minimum(delay, 30)
    order = np.lexsort((tr, resp_day))
    tr, resp_day, transactional, pw = tr[order], resp_day[order], transactional[order], pw[order]

    chan = trips["chan"][tr]
    ci_tp = np.where(
        trips["mobile"][tr], _TP_INDEX["mobile_checkin"], _TP_INDEX["front_desk_checkin"]
    )
    co_tp = np.where(trips["mobile"][tr], _TP_INDEX["app_checkout"], _TP_INDEX["checkout_desk"])
    which = rng.choice(4, n, p=[0.4, 0.25, 0.2, 0.15])
    tp = np.choose(which, [ci_tp, np.full(n, _TP_INDEX["room"]), co_tp, _BOOK_TP[chan]])
    tp_names = np.array([t[0] for t in TOUCHPOINTS], dtype=object)
    chan_names = np.array(CHANNELS, dtype=object)
    touchpoint = np.where(transactional, tp_names[tp], "")
    channel = np.where(transactional, chan_names[_TP_CHANNEL[tp]], chan_names[chan])
    anonymous = rng.random(n) < ANONYMOUS_SHARE
    c = trips["cust"][tr]
    guest = np.where(anonymous, "", cust.guest_id[c])

    ratings = trips["ratings"][tr].astype(np.int64)
    coded = ratings.copy()
    for a, att in enumerate(ATTRIBUTES):
        u = rng.random(n)
        na = NOT_APPLICABLE.get(att, 0.01)
        dk = DONT_KNOW.get(att, 0.02)
        coded[u < na, a] = 0
        coded[(u >= na) & (u < na + dk), a] = 99

    weight = 1.0 / pw * np.exp(rng.normal(0, 0.1, n))
    weight = np.round(weight / weight.mean(), 4)

    resp_ids = np.array([f"R{i + 1:07d}" for i in range(n)], dtype=object)
    comments, pii, foreign = _make_comments(
        crng,
        coded,
        trips["nps"][tr],
        trips["hotel"][tr],
        trips["t"][tr],
        c,
        anonymous,
        cust,
        staff,
        emp_df,
        resp_ids,
    )
    data: dict[str, Any] = {
        "resp_id": resp_ids,
        "guest_id": guest,
        "hotel_code": hotels.code[trips["hotel"][tr]],
        "resp_date": resp_day,
        "survey_type": np.where(transactional, "transactional", "relationship"),
        "touchpoint": touchpoint,
        "channel": channel,
        "trip_purpose": np.where(trips["business"][tr], "business", "leisure"),
        "q_recommend": trips["nps"][tr].astype(np.int64),
        "q_satisfaction": trips["csat"][tr].astype(np.int64),
        "q_effort": trips["ces"][tr].astype(np.int64),
    }
    for a, att in enumerate(ATTRIBUTES):
        data[f"att_{att}"] = coded[:, a]
    data["comment"] = comments
    data["weight"] = weight
    df = pd.DataFrame(data)
    for col in (
        "resp_id",
        "guest_id",
        "hotel_code",
        "survey_type",
        "touchpoint",
        "channel",
        "trip_purpose",
        "comment",
    ):
        df[col] = df[col].astype(object)
    return df, pii, foreign


def _make_comments(
    rng: np.random.Generator,
    coded: np.ndarray,
    nps: np.ndarray,
    hotel: np.ndarray,
    t: np.ndarray,
    cust_idx: np.ndarray,
    anonymous: np.ndarray,
    cust: _Customers,
    staff: _Staff,
    emp_df: pd.DataFrame,
    resp_ids: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any], list[dict[str, Any]]]:
    n = len(nps)
    comments = np.full(n, "", dtype=object)
    has = np.flatnonzero(rng.random(n) < COMMENT_SHARE)
    k = len(has)
    valid = (coded[has] >= 1) & (coded[has] <= 10)
    jitter = rng.random((k, len(ATTRIBUTES))) * 0.5
    low_key = np.where(valid, coded[has] + jitter, 99.0)
    high_key = np.where(valid, coded[has] - jitter, -99.0)
    low_a = low_key.argmin(1)
    high_a = high_key.argmax(1)
    low_v = coded[has, low_a]
    high_v = coded[has, high_a]
    variant = rng.integers(0, 3, (k, 3))
    add_generic = rng.random(k) < 0.5

    # planted PII and foreign-language comments (disjoint sets of comment rows)
    kinds = rng.random(k)
    cut = np.cumsum(
        [PII_SHARE["email"], PII_SHARE["phone"], PII_SHARE["staff_name"], FOREIGN_SHARE]
    )
    kind = np.searchsorted(cut, kinds, "right")  # 0 email, 1 phone, 2 staff, 3 foreign, 4 none
    lang = np.where(rng.random(k) < 0.5, "de", "fr")

    # staff on duty: guest-facing employees of the hotel in that month
    gf = emp_df["team"].isin(["front_desk", "food_beverage"]).to_numpy()
    cand = np.flatnonzero(gf)
    ckey = staff.hotel[cand] * 10_000 + staff.t[cand]
    corder = np.argsort(ckey, kind="stable")
    cand, ckey = cand[corder], ckey[corder]
    emp_ids = emp_df["emp_id"].to_numpy()
    emp_names = emp_df["name"].to_numpy()
    staff_u = rng.random(k)
    rnd_phone = rng.integers(0, 1_000_000, k)
    rnd_a = rng.integers(7000, 8000, k)

    pii: dict[str, Any] = {"email": [], "phone": [], "staff_name": [], "_rows": []}
    foreign: list[dict[str, Any]] = []
    for i in range(k):
        r = has[i]
        v = variant[i]
        g = 0 if nps[r] <= 6 else 1 if nps[r] <= 8 else 2
        if kind[i] == 3:
            bank = _FOREIGN[lang[i]]
            att = ATTRIBUTES[low_a[i]] if low_v[i] <= 4 else ATTRIBUTES[high_a[i]]
            if att in bank and (low_v[i] <= 4 or high_v[i] >= 9):
                txt = bank[att][0 if low_v[i] <= 4 else 1]
            else:
                txt = bank["_generic"][0 if g == 0 else 1]
            comments[r] = txt
            foreign.append({"resp_id": resp_ids[r], "language": str(lang[i])})
            pii["_rows"].append(int(r))
            continue
        parts: list[str] = []
        neg = _PHRASES[ATTRIBUTES[low_a[i]]][0] if low_v[i] <= 4 else None
        pos = _PHRASES[ATTRIBUTES[high_a[i]]][1] if high_v[i] >= 9 else None
        neg_txt = neg[v[0] % len(neg)] if neg else None
        pos_txt = pos[v[1] % len(pos)] if pos else None
        first, second = (pos_txt, neg_txt) if g == 2 else (neg_txt, pos_txt)
        parts.extend(p for p in (first, second) if p)
        if not parts or add_generic[i]:
            parts.append(_GENERIC[g][v[2] % 2])
        if kind[i] == 0:
            email = (
                cust.extra["email"][cust_idx[r]]
                if not anonymous[r]
                else f"guest{rnd_phone[i]:06d}@example.com"
            )
            parts.append(f"Please contact me at {email}.")
            pii["email"].append(resp_ids[r])
            pii["_rows"].append(int(r))
        elif kind[i] == 1:
            phone = (
                cust.extra["phone"][cust_idx[r]]
                if not anonymous[r]
                else f"07{rnd_a[i] % 1000:03d} {rnd_phone[i]:06d}"
            )
            parts.append(f"You can reach me on {phone}.")
            pii["phone"].append(resp_ids[r])
            pii["_rows"].append(int(r))
        elif kind[i] == 2:
            key = hotel[r] * 10_000 + t[r]
            lo, hi = np.searchsorted(ckey, [key, key + 1])
            if hi > lo:
                row = cand[lo + int(staff_u[i] * (hi - lo))]
                name = emp_names[row]
                if coded[r, _A["staff_friendliness"]] in range(1, 6):
                    parts.append(f"{name} at the front desk was unhelpful.")
                else:
                    parts.append(f"Special thanks to {name}, who made our stay.")
                pii["staff_name"].append(
                    {"resp_id": resp_ids[r], "emp_id": emp_ids[row], "name": name}
                )
                pii["_rows"].append(int(r))
        comments[r] = " ".join(parts)
    pii["_rows"] = np.array(sorted(pii["_rows"]), dtype=np.int64)
    return comments, pii, foreign


def _write_sav(path: Path, df: pd.DataFrame, cal: _Calendar) -> None:
    df = df.copy()
    df["resp_date"] = pd.to_datetime(df["resp_date"].to_numpy(), unit="D").date
    labels = {
        "resp_id": "Response identifier",
        "guest_id": "Guest loyalty number (empty if the response is anonymous)",
        "hotel_code": "Hotel code",
        "resp_date": "Date the response was submitted",
        "survey_type": "Survey type: relationship (periodic) or transactional (after a touchpoint)",
        "touchpoint": "Touchpoint the transactional survey refers to",
        "channel": "Channel of the touchpoint (transactional) or of the booking (relationship)",
        "trip_purpose": "Was this stay mainly for business or for leisure?",
        "q_recommend": "How likely is it that you would recommend ROX Hotels to a friend or "
        "colleague? (0 = not at all likely, 10 = extremely likely)",
        "q_satisfaction": "Overall, how satisfied were you with your stay? "
        "(1 = very dissatisfied, 5 = very satisfied)",
        "q_effort": "How much effort did you personally have to put forth to handle your stay? "
        "(1 = very low effort, 7 = very high effort)",
        "comment": "Is there anything else you would like to tell us about your stay?",
        "weight": "Design weight (normalised inverse response propensity, mean 1)",
    }
    value_labels: dict[str, dict[int, str]] = {
        "q_recommend": {0: "Not at all likely", 10: "Extremely likely"},
        "q_satisfaction": {
            1: "Very dissatisfied",
            2: "Dissatisfied",
            3: "Neither",
            4: "Satisfied",
            5: "Very satisfied",
        },
        "q_effort": {1: "Very low effort", 4: "Neutral", 7: "Very high effort"},
    }
    missing: dict[str, list[int]] = {}
    for att in ATTRIBUTES:
        col = f"att_{att}"
        labels[col] = (
            f"How would you rate {_ATT_QUESTION[att]}? (1 = very poor, 10 = excellent; "
            "0 = not applicable, 99 = don't know)"
        )
        value_labels[col] = {0: "Not applicable", 1: "Very poor", 10: "Excellent", 99: "Don't know"}
        missing[col] = [0, 99]
    pyreadstat.write_sav(
        df,
        str(path),
        file_label="ROX Hotels guest survey (synthetic)",
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_ranges=missing,
        variable_measure={f"att_{a}": "ordinal" for a in ATTRIBUTES},
        variable_format={
            "q_recommend": "F2.0",
            "q_satisfaction": "F2.0",
            "q_effort": "F2.0",
            "weight": "F8.4",
            **{f"att_{a}": "F2.0" for a in ATTRIBUTES},
        },
    )
    # ReadStat stamps the wall-clock creation time into the header; pin it for reproducibility
    stamp_day = pd.Timestamp(cal.end_day, unit="D")
    header = (stamp_day.strftime("%d %b %y") + "00:00:00").encode("ascii")
    with open(path, "r+b") as fh:
        if fh.read(4) != b"$FL2":
            raise RuntimeError("unexpected SPSS header")
        fh.seek(92)
        fh.write(header)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------
def _make_network(
    rng: np.random.Generator, staff: _Staff, emp_df: pd.DataFrame, cal: _Calendar
) -> tuple[pd.DataFrame, list[str]]:
    last = np.flatnonzero(staff.t == cal.n - 1)
    hotel = staff.hotel[last]
    team = staff.team[last]
    ids = emp_df["emp_id"].to_numpy()[last]
    n = len(last)
    n_inf = max(1, round(INFLUENCER_SHARE * n))
    p = np.where(team == TEAMS.index("management"), 0.5, 1.0)
    inf_idx = np.sort(rng.choice(n, n_inf, replace=False, p=p / p.sum()))
    influencer = np.zeros(n, dtype=bool)
    influencer[inf_idx] = True
    n_nom = np.clip(1 + rng.poisson(2.0, n), 1, 6)
    cross = rng.random(n) < 0.04
    by_hotel = [np.flatnonzero(hotel == h) for h in range(int(hotel.max()) + 1)]
    inf_all = np.flatnonzero(influencer)
    frm: list[np.ndarray] = []
    to: list[np.ndarray] = []
    for i in range(n):
        pool = by_hotel[hotel[i]]
        pool = pool[pool != i]
        if len(pool) == 0:
            continue
        w = np.where(team[pool] == team[i], 3.0, 1.0) * np.where(influencer[pool], 12.0, 1.0)
        k = min(int(n_nom[i]), len(pool))
        chosen = rng.choice(pool, k, replace=False, p=w / w.sum())
        if cross[i]:
            other = inf_all[hotel[inf_all] != hotel[i]]
            if len(other):
                chosen = np.r_[chosen, rng.choice(other, 1)]
        frm.append(np.full(len(chosen), i))
        to.append(chosen)
    f = np.concatenate(frm)
    t_ = np.concatenate(to)
    weight = np.clip(1 + rng.poisson(np.where(influencer[t_], 2.0, 1.2)), 1, 5)
    df = pd.DataFrame({"from_emp": ids[f], "to_emp": ids[t_], "weight": weight.astype(np.int64)})
    return df, sorted(ids[inf_idx].tolist())


# --------------------------------------------------------------------------------------------
# Bad rows
# --------------------------------------------------------------------------------------------
def _n_bad(n: int, rate: float) -> int:
    return max(1, round(n * rate))


def _with_duplicates(
    rng: np.random.Generator, df: pd.DataFrame, n_dup: int, eligible: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Insert copies of ``n_dup`` eligible rows somewhere after their original.

    Returns the new frame, the original-row -> new-position map and the copies' positions.
    """
    n = len(df)
    src = np.sort(rng.choice(eligible, min(n_dup, len(eligible)), replace=False))
    keys = np.r_[np.arange(n, dtype=float), src + 0.5 + rng.random(len(src)) * (n - 1 - src)]
    order = np.argsort(keys, kind="stable")
    pos = np.empty(len(keys), dtype=np.int64)
    pos[order] = np.arange(len(keys))
    out = df.take(np.r_[np.arange(n), src][order]).reset_index(drop=True)
    return out, pos[:n], pos[n:]


def _plant_customer_bad_rows(
    rng: np.random.Generator, df: pd.DataFrame, enabled: bool
) -> tuple[pd.DataFrame, dict[str, Any]]:
    if not enabled:
        return df, {}
    n = len(df)
    rates = BAD_RATES["customers.csv"]
    n_date = _n_bad(n, rates["unparseable_date"])
    date_rows = np.sort(rng.choice(n, n_date, replace=False))
    values = np.where(rng.random(n_date) < 0.5, "31/02/2025", "not a date").astype(object)
    df = df.copy()
    joined = df["joined"].to_numpy(dtype=object).copy()
    joined[date_rows] = values
    df["joined"] = joined
    eligible = np.setdiff1d(np.arange(n), date_rows)
    df, pos, dup_pos = _with_duplicates(rng, df, _n_bad(n, rates["duplicate_id"]), eligible)
    gid = df["guest_id"].to_numpy()
    return df, {
        "unparseable_date": {
            "count": n_date,
            "rows": pos[date_rows],
            "guest_ids": gid[pos[date_rows]],
            "column": "joined",
            "values": values,
        },
        "duplicate_id": {
            "count": len(dup_pos),
            "rows": dup_pos,
            "guest_ids": gid[dup_pos],
            "column": "guest_id",
            "note": "exact copy of an earlier row; 'rows' are the positions of the copies",
        },
    }


def _plant_survey_bad_rows(
    rng: np.random.Generator,
    df: pd.DataFrame,
    bad_code: str,
    enabled: bool,
    excluded: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    if not enabled:
        return df, {}
    n = len(df)
    rates = BAD_RATES["cx_survey.sav"]
    pool = rng.permutation(np.setdiff1d(np.arange(n), excluded))
    n_oor, n_unit = _n_bad(n, rates["out_of_range"]), _n_bad(n, rates["unknown_unit"])
    oor = np.sort(pool[:n_oor])
    unit = np.sort(pool[n_oor : n_oor + n_unit])
    eligible = np.sort(pool[n_oor + n_unit :])
    df = df.copy()
    col_choice = rng.random(n_oor) < 0.5
    cols = np.where(col_choice, "q_recommend", "q_satisfaction")
    vals = np.where(col_choice, rng.integers(11, 13, n_oor), 7)
    for r, col, v in zip(oor, cols, vals, strict=True):
        df.loc[r, col] = int(v)
    hc = df["hotel_code"].to_numpy(dtype=object).copy()
    hc[unit] = bad_code
    df["hotel_code"] = hc
    df["hotel_code"] = df["hotel_code"].astype(object)
    df, pos, dup_pos = _with_duplicates(rng, df, _n_bad(n, rates["duplicate_id"]), eligible)
    rid = df["resp_id"].to_numpy()
    return df, {
        "out_of_range": {
            "count": n_oor,
            "rows": pos[oor],
            "resp_ids": rid[pos[oor]],
            "columns": cols,
            "values": vals,
        },
        "unknown_unit": {
            "count": n_unit,
            "rows": pos[unit],
            "resp_ids": rid[pos[unit]],
            "column": "hotel_code",
            "value": bad_code,
        },
        "duplicate_id": {
            "count": len(dup_pos),
            "rows": dup_pos,
            "resp_ids": rid[dup_pos],
            "column": "resp_id",
            "note": "exact copy of an earlier row; 'rows' are the positions of the copies",
        },
    }


def _plant_employee_bad_rows(
    rng: np.random.Generator, df: pd.DataFrame, bad_code: str, enabled: bool
) -> tuple[pd.DataFrame, dict[str, Any]]:
    if not enabled:
        return df, {}
    n = len(df)
    rates = BAD_RATES["employees.csv"]
    pool = rng.permutation(n)
    n_oor, n_unit = _n_bad(n, rates["out_of_range"]), _n_bad(n, rates["unknown_unit"])
    oor = np.sort(pool[:n_oor])
    unit = np.sort(pool[n_oor : n_oor + n_unit])
    eligible = np.sort(pool[n_oor + n_unit :])
    df = df.copy()
    enps = df["enps"].to_numpy().copy()
    enps[oor] = 11
    df["enps"] = enps
    hc = df["hotel_code"].to_numpy(dtype=object).copy()
    hc[unit] = bad_code
    df["hotel_code"] = hc
    df, pos, dup_pos = _with_duplicates(rng, df, _n_bad(n, rates["duplicate_id"]), eligible)
    key = (df["emp_id"] + "|" + df["month"]).to_numpy()
    return df, {
        "out_of_range": {
            "count": n_oor,
            "rows": pos[oor],
            "keys": key[pos[oor]],
            "column": "enps",
            "value": 11,
        },
        "unknown_unit": {
            "count": n_unit,
            "rows": pos[unit],
            "keys": key[pos[unit]],
            "column": "hotel_code",
            "value": bad_code,
        },
        "duplicate_id": {
            "count": len(dup_pos),
            "rows": dup_pos,
            "keys": key[dup_pos],
            "columns": ["emp_id", "month"],
            "note": "exact copy of an earlier row; keys are 'emp_id|month'",
        },
    }


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------
def _causal_model_truth() -> dict[str, Any]:
    return {
        "hotel_quality": {"distribution": "N(0, 1)"},
        "pride": {
            "intercept": PRIDE_INTERCEPT,
            "per_management_quality": PRIDE_PER_QUALITY,
            "employee_random_effect_sd": PRIDE_EMPLOYEE_SD,
            "hotel_month_climate_sd": PRIDE_HOTEL_MONTH_SD,
            "hotel_month_climate_ar1": PRIDE_HOTEL_AR,
            "noise_sd": PRIDE_NOISE_SD,
            "new_hire_bonus_tenure_lt_3": PRIDE_NEW_HIRE,
            "team_effects": dict(zip(TEAMS, PRIDE_TEAM, strict=True)),
        },
        "greet_by_name": {
            "scale": "share 0-1",
            "logit_intercept": GREET_INTERCEPT,
            "logit_per_pride_point": GREET_PER_PRIDE,
            "pride_centre": 4.5,
            "logit_noise_sd": GREET_SD,
            "team_effects": dict(zip(TEAMS, GREET_TEAM, strict=True)),
        },
        "first_contact_resolution": {
            "scale": "share 0-1",
            "logit_intercept": FCR_INTERCEPT,
            "logit_per_pride_point": FCR_PER_PRIDE,
            "logit_per_log1p_tenure": FCR_PER_LOG_TENURE,
            "logit_noise_sd": FCR_SD,
        },
        "turnover": {
            "logit_intercept": TURN_INTERCEPT,
            "logit_per_pride_point": TURN_PER_PRIDE,
            "pride_centre": 4.5,
            "new_hire_tenure_lt_6": TURN_NEW_HIRE,
            "team_effects": dict(zip(TEAMS, TURN_TEAM, strict=True)),
        },
        "checkin": {
            "desk_minutes_base": DESK_BASE,
            "desk_per_front_desk_fcr_share": DESK_PER_FCR,
            "fcr_centre": 0.75,
            "desk_per_front_desk_turnover_share": DESK_PER_FD_TURNOVER,
            "desk_per_management_quality": DESK_PER_QUALITY,
            "desk_sdlog": DESK_SDLOG,
            "mobile_minutes_mean": MOBILE_MEAN,
            "mobile_sdlog": MOBILE_SDLOG,
            "mobile_uptake_if_app_installed": MOBILE_UPTAKE,
        },
        "attributes": {
            "base_means": ATT_BASE,
            "checkin_speed_per_minute": CHECKIN_SPEED_PER_MINUTE,
            "staff_friendliness_per_greet_share": STAFF_PER_GREET,
            "greet_centre": 0.5,
            "cleanliness_per_housekeeping_pride": CLEAN_PER_HK_PRIDE,
            "housekeeping_pride_centre": 4.7,
            "per_management_quality": ATT_PER_QUALITY,
            "hotel_fixed_effect_sd": ATT_HOTEL_SD,
            "booking_ease_by_channel": dict(zip(CHANNELS, BOOKING_EASE_BY_CHANNEL, strict=True)),
            "halo_loading": HALO_LOADING,
            "halo_rater_sd": HALO_RATER_SD,
            "halo_stay_sd": HALO_STAY_SD,
            "noise_sd": ATT_NOISE_SD,
            "scale": "integers 1-10 (rounded and clipped)",
        },
        "nps": {
            "intercept": NPS_INTERCEPT,
            "rating_centre": NPS_CENTER,
            "noise_sd": NPS_NOISE_SD,
            "driver_weights": DRIVER_WEIGHTS,
            "equation": "round(intercept + sum_k w[purpose][k] * (rating_k - centre) + noise), "
            "clipped to 0-10",
        },
        "returns": {
            "log_rate_per_nps_point": RETURN_PER_NPS,
            "nps_reference": NPS_REF,
            "note": "monthly trip rate uses the NPS of the guest's latest stay",
        },
        "community": {
            "log_rate_uplift": COMMUNITY_UPLIFT,
            "true_rate_ratio": math.exp(COMMUNITY_UPLIFT),
            "selection_logit_per_sd_log_base_rate": COMMUNITY_SELECTION,
        },
        "app": {
            "log_rate_uplift": APP_UPLIFT,
            "true_rate_ratio": math.exp(APP_UPLIFT),
            "selection_logit_per_sd_log_base_rate": APP_SELECTION,
            "note": "direct effect on trip rate; the app also shortens check-in (indirect path)",
        },
        "occupancy": {
            "baseline": OCC_TARGET,
            "logit_per_reputation_nps_point": OCC_PER_REPUTATION,
            "reputation_persistence": REP_PERSISTENCE,
            "hotel_effect_sd_logit": OCC_HOTEL_SD,
            "noise_sd_logit": OCC_NOISE_SD,
            "revenue_other_factor": REVENUE_OTHER_FACTOR,
        },
        "season": {
            "business": SEASON_BUSINESS,
            "leisure": SEASON_LEISURE,
            "index": "calendar month January..December",
        },
        "journey": {
            "p_stop_after_discover": P_STOP_DISCOVER,
            "p_book_abandoned": P_BOOK_ABANDON,
            "p_no_show": P_NO_SHOW,
            "p_post_stay_contact": P_POST_STAY,
        },
    }


def _rating_slope(mu: np.ndarray) -> np.ndarray:
    """d E[clip(round(mu + e), 1, 10)] / d mu for e ~ N(0, ATT_NOISE_SD): the integer rating
    moves with its latent mean except where rounding and the 1-10 clip hold it."""
    cuts = np.arange(1.5, 10.0, 1.0)
    z = (cuts[None, :] - np.asarray(mu, dtype=np.float64)[:, None]) / ATT_NOISE_SD
    return (np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi) / ATT_NOISE_SD).sum(1)


def _linkage_truth(staff: _Staff, trips: dict[str, np.ndarray], cal: _Calendar) -> dict:
    """True effects at the level the ROX linkage model estimates them (unit x period means).

    Each value is the change in a unit-period aggregate per unit change in its parent's
    aggregate, averaged over the data the generator produced (an average marginal effect of
    the structural equations above): e.g. front-line greeting share per pride point is
    ``0.55 * mean(g (1 - g))`` over front-line employee-months. Effects named here are the
    direct effects of the paths declared in the sample's engagement.yml (``linkage.paths``);
    a listed parent with value 0 has no direct path in the generator.
    """
    team = staff.team
    gf = (team == TEAMS.index("front_desk")) | (team == TEAMS.index("food_beverage"))
    fd = team == TEAMS.index("front_desk")
    g, f = staff.greet, staff.fcr
    p_leave = _expit(
        TURN_INTERCEPT
        + TURN_PER_PRIDE * (staff.pride - 4.5)
        + np.asarray(TURN_TEAM)[team]
        + TURN_NEW_HIRE * (staff.tenure < 6)
    )
    stay = trips["outcome"] == 3
    mu = trips["rating_mu"][stay]
    slope = {a: float(_rating_slope(mu[:, _A[a]]).mean()) for a in ATTRIBUTES}
    # check-in minutes of a hotel-month: (1 - mobile share) * desk time + mobile share * 1.6,
    # a multiplicative mechanism; at the unit-quarter level the truth is the within-unit
    # linear projection of the expected minutes on the declared parents (hotel-quarter means,
    # hotel and quarter effects), which is what the linear panel model estimates
    nh, nt = staff.desk_mean.shape
    key = trips["hotel"][stay] * nt + trips["t"][stay]
    cnt = np.bincount(key, minlength=nh * nt).reshape(nh, nt)
    mob = np.bincount(key, weights=trips["mobile"][stay], minlength=nh * nt).reshape(nh, nt)
    m_ht = np.where(cnt > 0, mob / np.maximum(cnt, 1), 0.0)
    exp_min = np.where(cnt > 0, (1 - m_ht) * staff.desk_mean + m_ht * MOBILE_MEAN, np.nan)
    quarter = np.array([int(lbl[:4]) * 4 + (int(lbl[5:7]) - 1) // 3 for lbl in cal.labels])
    qs = np.unique(quarter)

    def q_mean(a: np.ndarray) -> np.ndarray:
        return np.stack([np.nanmean(a[:, quarter == qq], axis=1) for qq in qs], axis=1)

    def within_fit(y: np.ndarray, *xs: np.ndarray) -> np.ndarray:
        hh, qq = np.meshgrid(np.arange(nh), np.arange(len(qs)), indexing="ij")
        ok = np.isfinite(y).ravel()
        X = np.column_stack(
            [
                *(x.ravel() for x in xs),
                (hh.ravel()[:, None] == np.arange(1, nh)[None, :]),
                (qq.ravel()[:, None] == np.arange(1, len(qs))[None, :]),
                np.ones(nh * len(qs)),
            ]
        ).astype(np.float64)[ok]
        return np.linalg.lstsq(X, y.ravel()[ok], rcond=None)[0][: len(xs)]

    mins = within_fit(
        q_mean(exp_min),
        q_mean(staff.extras["fcr_front_desk"]),
        q_mean(staff.extras["turnover_front_desk"]),
        q_mean(m_ht),
    )

    # NPS (promoters - detractors, x100) of a stay given its ratings: noise N(0, 1) on the
    # latent score; its best linear fit on all ten ratings with hotel and quarter effects
    # over every stay is what a respondent-level regression on the ratings estimates
    r = trips["ratings"][stay].astype(np.float64)
    w = np.where(
        trips["business"][stay][:, None],
        np.array([DRIVER_WEIGHTS["business"][a] for a in ATTRIBUTES])[None, :],
        np.array([DRIVER_WEIGHTS["leisure"][a] for a in ATTRIBUTES])[None, :],
    )
    lat = NPS_INTERCEPT + ((r - NPS_CENTER) * w).sum(1)
    target = 100 * (ndtr(lat - 8.5) - ndtr(6.5 - lat))
    cell_h = trips["hotel"][stay]
    cell_q = quarter[trips["t"][stay]]
    X = np.column_stack(
        [
            r,
            (cell_h[:, None] == np.arange(1, nh)[None, :]).astype(np.float64),
            (cell_q[:, None] == np.unique(cell_q)[None, 1:]).astype(np.float64),
            np.ones(len(r)),
        ]
    )
    beta = np.linalg.lstsq(X, target, rcond=None)[0][: len(ATTRIBUTES)]
    nps_per = dict(zip(ATTRIBUTES, beta.tolist(), strict=True))

    def edge(child, parent, value, how):
        return {"child": child, "parent": parent, "value": round(float(value), 6), "how": how}

    effects = [
        edge("greet_front_line", "pride", GREET_PER_PRIDE * np.mean(g[gf] * (1 - g[gf])),
             "0.55 * mean g(1-g), front desk and food & beverage employee-months"),
        edge("fcr_front_desk", "pride", FCR_PER_PRIDE * np.mean(f[fd] * (1 - f[fd])),
             "0.40 * mean f(1-f), front-desk employee-months"),
        edge("front_desk_turnover", "pride", TURN_PER_PRIDE * np.mean(p_leave[fd] * (1 - p_leave[fd])),
             "-0.75 * mean p(1-p) of the monthly leaving probability, front desk"),
        edge("cleanliness", "pride", CLEAN_PER_HK_PRIDE * slope["cleanliness"],
             "0.8 rating points per housekeeping pride point x rating slope (rounding, clip)"),
        edge("staff_friendliness", "greet_front_line", STAFF_PER_GREET * slope["staff_friendliness"],
             "5.0 rating points per front-line greeting share x rating slope"),
        edge("staff_friendliness", "pride", 0.0, "no direct path (only through greeting)"),
        *(
            edge("checkin_minutes", parent, value, "within-unit linear projection of "
                 "E[minutes] = (1 - mobile share) x desk time(-8 per FCR, +12 per front-desk "
                 "turnover) + mobile share x 1.6 on the three parents")
            for parent, value in zip(
                ("fcr_front_desk", "front_desk_turnover", "mobile_checkin_share"), mins,
                strict=True,
            )
        ),
        edge("checkin_speed", "checkin_minutes", CHECKIN_SPEED_PER_MINUTE * slope["checkin_speed"],
             "-0.40 rating points per minute x rating slope"),
        *(
            edge("nps", a, nps_per[a], "linear fit of E[NPS | ratings] on all ten ratings, "
                 "hotel and quarter effects, over all stays")
            for a in ("checkin_speed", "cleanliness", "staff_friendliness")
        ),
    ]  # fmt: skip
    return {
        "grain": "quarter",
        "effects": effects,
        "rating_slope": slope,
        "nps_per_rating_point": nps_per,
        "note": "direct effects of the sample's declared paths; the chain's totals are sums "
        "of products along the paths; occupancy and revenue links have no value at this level "
        "(occupancy follows an expected-service reputation, not the surveyed NPS)",
    }


# the estimand of rox_helpers.actions.adoption_effects (its defaults)
ESTIMAND_MIN_PRE_MONTHS, ESTIMAND_MIN_POST_MONTHS = 6, 3
TOTAL_EFFECT_COPIES = 20


def _adoption_total_effect(
    seed: int,
    name: str,
    cust: _Customers,
    hotels: _Hotels,
    staff: _Staff,
    cal: _Calendar,
    scale: float,
) -> dict[str, Any]:
    """The total effect of joining (``community``) or installing (``app``) on the joiners'
    stays, by counterfactual simulation with the generator's own trip model.

    The estimand is the one :func:`rox_helpers.actions.adoption_effects` targets: customers
    with analytics consent who joined inside the window, with their first active month
    (sign-up or window start) at least ``ESTIMAND_MIN_PRE_MONTHS`` before the join month and
    at least ``ESTIMAND_MIN_POST_MONTHS`` months after it; the outcome is their stays per
    seasonally weighted active month after the join month. ``TOTAL_EFFECT_COPIES`` copies of
    these customers are simulated twice from fresh draws: as they are, and with the
    programme never joined (for the app: no direct uplift, no mobile check-in, no app
    bookings). The ratio of the mean expected rates is the total effect; for the app it adds
    to the direct uplift the path through mobile check-in -> check-in rating -> NPS ->
    return rate and the app's booking ease. Expected trip counts (the Poisson means) are used
    instead of draws, so only the NPS paths are random. No draw of the sample's own streams
    is used: the data files do not depend on this.
    """
    never = _Customers._NEVER
    day = cust.comm_day if name == "community" else cust.app_day
    first = np.searchsorted(cal.month_start, np.maximum(cust.joined, cal.start_day), "right") - 1
    k = np.searchsorted(cal.month_start, day, "right") - 1
    inside = (day < never) & (day >= cal.start_day) & (day < cal.end_day)
    ok = (
        inside
        & cust.consent_analytics
        & (k - first >= ESTIMAND_MIN_PRE_MONTHS)
        & (cal.n - 1 - k >= ESTIMAND_MIN_POST_MONTHS)
    )
    idx = np.tile(np.flatnonzero(ok), TOTAL_EFFECT_COPIES)
    out: dict[str, Any] = {
        "estimand": "joiners inside the window with analytics consent, at least "
        f"{ESTIMAND_MIN_PRE_MONTHS} active months before the join month and "
        f"{ESTIMAND_MIN_POST_MONTHS} after it; stays per seasonally weighted active month "
        "after the join month, with vs without joining (counterfactual simulation, "
        f"{TOTAL_EFFECT_COPIES} copies, expected counts)",
        "n_joiners_in_estimand": int(ok.sum()),
    }
    if len(idx) == 0:
        out["true_total_rate_ratio"] = None
        return out
    sub = cust.take(idx)
    post = np.arange(cal.n)[None, :] > k[idx][:, None]
    frac = np.column_stack(
        [
            np.clip((cal.month_start[t + 1] - np.maximum(sub.joined, cal.month_start[t]))
                    / cal.dim[t], 0.0, 1.0)
            for t in range(cal.n)
        ]
    )  # fmt: skip
    bs = sub.business_share[:, None]
    season = (
        bs * SEASON_BUSINESS[cal.calmonth][None, :]
        + (1 - bs) * SEASON_LEISURE[cal.calmonth][None, :]
    )
    exposure = (frac * season * post).sum(1)
    # a trip becomes a stay unless it stops early; walk-ins always stay
    walk_in = np.array([s.channel_mix[3] / sum(s.channel_mix) for s in SEGMENTS])[sub.seg]
    p_stay = walk_in + (1 - walk_in) * (1 - P_STOP_DISCOVER - P_BOOK_ABANDON - P_NO_SHOW)
    rates = []
    for world in (1, 0):
        c = sub.take(np.arange(len(idx)))
        if world == 0:
            if name == "community":
                c.comm_day = np.full(len(idx), never)
            else:
                c.app_day = np.full(len(idx), never)
        lam: list[np.ndarray] = []
        rng = np.random.default_rng([seed, 8, world, 0 if name == "community" else 1])
        _simulate_trips(rng, c, hotels, staff, cal, scale, rates=lam)
        stays = np.column_stack(lam) * p_stay[:, None]
        rates.append(float(np.mean((stays * post).sum(1) / exposure)))
    out["true_total_rate_ratio"] = round(rates[0] / rates[1], 6)
    return out


def _uplift_truth(trips: dict[str, np.ndarray], cust: _Customers, cal: _Calendar) -> dict:
    """True and naive (ever vs never adopter) trip-rate ratios for community and app."""
    exposure = np.zeros(len(cust.base))
    for t in range(cal.n):
        lo = np.maximum(cust.joined, cal.month_start[t])
        exposure += np.clip((cal.month_start[t + 1] - lo) / cal.dim[t], 0, 1)
    n_trips = np.bincount(trips["cust"], minlength=len(cust.base))
    out = {}
    for name, flag, b in (
        ("community", cust.extra["comm"], COMMUNITY_UPLIFT),
        ("app", cust.extra["app_user"], APP_UPLIFT),
    ):
        r1 = n_trips[flag].sum() / max(exposure[flag].sum(), 1e-9)
        r0 = n_trips[~flag].sum() / max(exposure[~flag].sum(), 1e-9)
        out[name] = {
            "true_rate_ratio": round(math.exp(b), 6),
            "naive_rate_ratio_ever_vs_never": round(float(r1 / max(r0, 1e-12)), 6),
            "note": "naive ratio of trips per active customer-month, adopters vs non-adopters",
        }
    return out
