"""Tests of ``rox new``: the engagement scaffold and the mapping proposed from client data."""

from __future__ import annotations

import csv
import hashlib
import random
import re
import typing
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from rox_helpers import scaffold
from rox_helpers.config import EngagementConfig, load_engagement_config, parse_engagement_config
from rox_helpers.errors import ConfigError
from rox_helpers.scaffold import DEFAULT_TEMPLATE, ColumnProposal, new_engagement, render_template
from rox_helpers.schemas import CANONICAL

# --------------------------------------------------------------------------------------
# The template
# --------------------------------------------------------------------------------------


def _model_fields(model: type[BaseModel]) -> set[str]:
    """Every field name of a pydantic model and of the models nested in it."""
    names: set[str] = set()
    todo: list[object] = [model]
    seen: set[object] = set()
    while todo:
        tp = todo.pop()
        if tp in seen:
            continue
        seen.add(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, info in tp.model_fields.items():
                names.add(name)
                todo.append(info.annotation)
        else:
            todo.extend(typing.get_args(tp))
    return names


def test_template_has_placeholders_and_parses_after_rendering() -> None:
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    assert "{{slug}}" in text and "{{client_name}}" in text
    name = 'Café "Zeitgeist": Hotels & Spa #1'
    rendered = render_template(text, slug="zeitgeist-2026", client_name=name)
    assert "{{" not in rendered
    cfg = parse_engagement_config(rendered)
    assert cfg.client.name == name
    assert "zeitgeist-2026" in rendered
    assert set(cfg.data.declared()) == {"cx_survey"}
    assert cfg.data.cx_survey is not None and "nps" in cfg.data.cx_survey.columns


def test_template_documents_every_option() -> None:
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    keys = set(re.findall(r"([a-z_]+):", text))
    missing = sorted(_model_fields(EngagementConfig) - keys)
    assert not missing, f"options not documented in the template: {missing}"
    for table, spec in CANONICAL.items():
        assert table in text
        for column in spec.columns:
            assert re.search(rf"\b{column}\b", text), f"{table}.{column} not listed"
    # the two privacy thresholds are explained, not just set
    assert "reliability_base: 30" in text and "anonymity_floor: 5" in text
    assert re.search(r"STATISTICAL", text) and re.search(r"ETHICAL", text)


def test_render_template_flattens_line_breaks_in_names() -> None:
    rendered = render_template(
        DEFAULT_TEMPLATE.read_text(encoding="utf-8"), slug="x", client_name="Acme\nHotels\\ Ltd"
    )
    assert parse_engagement_config(rendered).client.name == "Acme Hotels\\ Ltd"


# --------------------------------------------------------------------------------------
# A plain new engagement
# --------------------------------------------------------------------------------------


def test_new_engagement_creates_folder_config_data_and_gitignore(tmp_path: Path) -> None:
    result = new_engagement(tmp_path / "engagements", "acme-hotels-2026")
    target = tmp_path / "engagements" / "acme-hotels-2026"
    assert result.path == target
    assert result.config_path == target / "engagement.yml"
    assert (target / "data").is_dir()
    assert (target / "data" / "README.md").read_text(encoding="utf-8").strip()
    ignored = (target / ".gitignore").read_text(encoding="utf-8").split()
    assert "runs/" in ignored and "data/" in ignored
    cfg = load_engagement_config(target)
    assert cfg.client.name == "Acme Hotels 2026"
    assert result.proposals == [] and result.notes == []


def test_client_name_is_used(tmp_path: Path) -> None:
    new_engagement(tmp_path, "n", client_name="Northwind: Hotels & Resorts")
    assert load_engagement_config(tmp_path / "n").client.name == "Northwind: Hotels & Resorts"


def test_existing_non_empty_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "acme"
    target.mkdir()
    (target / "engagement.yml").write_text("precious: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        new_engagement(tmp_path, "acme")
    assert err.value.fix
    assert (target / "engagement.yml").read_text(encoding="utf-8") == "precious: true\n"
    assert sorted(p.name for p in target.iterdir()) == ["engagement.yml"]


def test_existing_file_with_the_slug_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "acme").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError):
        new_engagement(tmp_path, "acme")
    assert (tmp_path / "acme").read_text(encoding="utf-8") == "x"


def test_existing_empty_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    result = new_engagement(tmp_path, "acme")
    assert result.config_path.is_file()


@pytest.mark.parametrize("slug", ["../x", "a/b", "", "..", ".", "Acme Hotels", "x" * 64, "/abs"])
def test_bad_slugs_are_refused(tmp_path: Path, slug: str) -> None:
    root = tmp_path / "engagements"
    with pytest.raises(ConfigError) as err:
        new_engagement(root, slug)
    assert err.value.fix
    assert not root.exists()


def test_from_data_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        new_engagement(tmp_path / "e", "acme", from_data=tmp_path / "missing")
    assert not (tmp_path / "e" / "acme").exists()


def test_template_without_markers_is_refused_for_from_data(tmp_path: Path) -> None:
    tpl = tmp_path / "t.yml"
    tpl.write_text(
        'client:\n  name: "{{client_name}}"\ndata:\n  cx_survey:\n    path: data/s.csv\n',
        encoding="utf-8",
    )
    (tmp_path / "export").mkdir()
    with pytest.raises(ConfigError):
        new_engagement(tmp_path / "e", "acme", template=tpl, from_data=tmp_path / "export")
    assert not (tmp_path / "e" / "acme").exists()
    # without from_data any valid template will do
    result = new_engagement(tmp_path / "e", "acme", template=tpl, client_name="A")
    assert load_engagement_config(result.path).client.name == "A"


# --------------------------------------------------------------------------------------
# --from-data on a public-survey export and a CRM extract
# --------------------------------------------------------------------------------------

NPS_Q = "How likely are you to recommend Northwind Hotels to a friend or colleague?"
CSAT_Q = "Overall, how satisfied were you with your stay? (1-5)"
CES_Q = "How easy was it to check in? (1 = very difficult, 7 = very easy)"
CLEAN_Q = "Please rate the cleanliness of your room"
STAFF_Q = "Please rate the friendliness of our staff"
HOTEL_Q = "Which hotel did you stay at?"
COMMENT_Q = "Any other comments?"
HEADER = [
    "",  # the row index a spreadsheet export adds
    "Response ID",
    "Recorded Date",
    NPS_Q,
    CSAT_Q,
    CES_Q,
    CLEAN_Q,
    STAFF_Q,
    HOTEL_Q,
    COMMENT_Q,
    "Email address",
]


def _write_export(folder: Path) -> None:
    rng = random.Random(7)
    folder.mkdir(parents=True)
    with open(folder / "survey_export.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(120):
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            w.writerow(
                [
                    i,
                    f"R_{rng.getrandbits(40):010x}",
                    f"{month:02d}/{day:02d}/2026 {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                    "" if i % 10 == 3 else rng.randint(0, 10),
                    rng.randint(1, 5),
                    "" if i % 8 == 5 else rng.randint(1, 7),
                    99 if i % 12 == 0 else rng.randint(1, 10),
                    99 if i % 15 == 1 else ("" if i % 9 == 2 else rng.randint(1, 10)),
                    rng.choice(["Amsterdam", "Berlin", "Paris", "Lisbon"]),
                    rng.choice(["", "", "Lovely stay, thanks!", "Room was noisy at night."]),
                    "" if i % 4 == 0 else f"guest{i}@example.com",
                ]
            )
    names = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Marie Curie", "José Martínez"]
    pd.DataFrame(
        {
            "Guest Ref": [f"G{i:05d}" for i in range(60)],
            "Name": [names[i % len(names)] for i in range(60)],
            "E-mail": [f"guest{i}@mail.example.org" for i in range(60)],
            "Member since": [pd.Timestamp(2015 + i % 9, 1 + i % 12, 1 + i % 28) for i in range(60)],
        }
    ).to_excel(folder / "customers.xlsx", index=False)


def _fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(folder).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("from_data")
    export = base / "client_export"
    _write_export(export)
    before = _fingerprint(export)
    result = new_engagement(
        base / "engagements", "northwind-2026", client_name="Northwind Hotels", from_data=export
    )
    text = result.config_path.read_text(encoding="utf-8")
    cfg = parse_engagement_config(text, file=str(result.config_path))
    return {
        "export": export,
        "before": before,
        "result": result,
        "text": text,
        "cfg": cfg,
    }


def _proposal(result, table: str, canonical: str) -> ColumnProposal:
    found = [p for p in result.proposals if p.table == table and p.canonical == canonical]
    assert len(found) == 1, f"{table}.{canonical}: {found}"
    return found[0]


def test_from_data_config_parses_and_is_what_load_reads(scaffolded) -> None:
    result = scaffolded["result"]
    cfg = load_engagement_config(result.path)
    assert cfg == scaffolded["cfg"]
    assert set(cfg.data.declared()) == {"cx_survey", "customers"}
    assert cfg.client.name == "Northwind Hotels"


def test_survey_columns_are_mapped_to_the_right_headers(scaffolded) -> None:
    src = scaffolded["cfg"].data.cx_survey
    assert src is not None
    assert src.path == "data/survey_export.csv"
    assert src.columns["response_id"] == "Response ID"
    assert src.columns["date"] == "Recorded Date"
    assert src.columns["nps"] == NPS_Q
    assert src.columns["csat"] == CSAT_Q
    assert src.columns["ces"] == CES_Q
    assert src.columns["comment"] == COMMENT_Q
    # US dates: a second number above 12 decides month-first
    assert src.date_format == "%m/%d/%Y %H:%M"
    # no canonical column is claimed by two client columns
    assert len(set(src.columns.values())) == len(src.columns)


def test_rating_columns_become_codebook_attributes(scaffolded) -> None:
    cfg, result = scaffolded["cfg"], scaffolded["result"]
    by_label = {entry.label: (name, entry) for name, entry in cfg.codebook.items()}
    assert set(by_label) == {CLEAN_Q, STAFF_Q}
    for question in (CLEAN_Q, STAFF_Q):
        name, entry = by_label[question]
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name) and len(name) <= 40
        assert entry.scale == (1, 10)
        assert entry.missing_codes == [99]
        assert cfg.data.cx_survey.columns[name] == question
        prop = _proposal(result, "cx_survey", name)
        assert prop.role == "attribute" and prop.review and prop.client_column == question
    assert by_label[CLEAN_Q][0] == "cleanliness_of_your_room"


def test_direct_identifiers_are_listed(scaffolded) -> None:
    ids = scaffolded["cfg"].privacy.identifier_columns
    assert ids == {"cx_survey": ["Email address"], "customers": ["Name", "E-mail"]}
    mapped = set(scaffolded["cfg"].data.cx_survey.columns.values()) | set(
        scaffolded["cfg"].data.customers.columns.values()
    )
    assert not mapped & {"Email address", "Name", "E-mail"}


def test_unnamed_index_column_is_ignored_with_a_note(scaffolded) -> None:
    cfg, result = scaffolded["cfg"], scaffolded["result"]
    assert "Unnamed: 0" not in cfg.data.cx_survey.columns.values()
    assert all(p.client_column != "Unnamed: 0" for p in result.proposals)
    assert any("Unnamed: 0" in n and "index" in n for n in result.notes)


def test_customer_file_is_proposed_as_customers(scaffolded) -> None:
    src = scaffolded["cfg"].data.customers
    assert src is not None
    assert src.path == "data/customers.xlsx"
    assert src.columns["customer_id"] == "Guest Ref"
    assert src.columns["signup_date"] == "Member since"
    prop = _proposal(scaffolded["result"], "customers", "customer_id")
    assert prop.client_column == "Guest Ref" and prop.file == "customers.xlsx"


def test_unmapped_columns_are_listed_in_a_comment(scaffolded) -> None:
    text = scaffolded["text"]
    assert re.search(r"^\s*#.*not mapped", text, re.M)
    assert re.search(rf'^\s*#\s+"{re.escape(HOTEL_Q)}"', text, re.M)
    assert HOTEL_Q not in scaffolded["cfg"].data.cx_survey.columns.values()


def test_originals_untouched_and_copied(scaffolded) -> None:
    export, result = scaffolded["export"], scaffolded["result"]
    assert _fingerprint(export) == scaffolded["before"]
    data = result.path / "data"
    for rel, (digest, _) in scaffolded["before"].items():
        assert hashlib.sha256((data / rel).read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in result.copied) == ["customers.xlsx", "survey_export.csv"]


def test_every_guess_has_a_review_comment(scaffolded) -> None:
    result, text = scaffolded["result"], scaffolded["text"]
    lines = text.splitlines()
    review = re.compile(r"# REVIEW: .+ \(confidence (0\.\d\d|1\.00)\)$")
    assert result.proposals
    for prop in result.proposals:
        assert 0 <= prop.confidence <= 1 and prop.reason
        quoted = '"' + prop.client_column.replace('"', '\\"') + '"'
        hits = [
            ln
            for ln in lines
            if quoted in ln and not ln.lstrip().startswith(("#", "label:"))  # label: the question
        ]
        assert hits, f"{prop.client_column!r} not written"
        assert all(review.search(ln) for ln in hits), hits
    # guessed formats and codes are flagged too
    for ln in lines:
        s = ln.strip()
        if s.startswith(
            ("date_format:", "missing_codes:", "scale:", "nps:", "csat:", "ces:")
        ) and not (s.endswith(":")):
            assert review.search(ln), ln
    # the whole generated data block: every value line is either structure or reviewed
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("# >>> rox:data"))
    end = next(i for i, ln in enumerate(lines) if ln.strip().startswith("# <<< rox:data"))
    for ln in lines[start + 1 : end]:
        s = ln.strip()
        if not s or s.startswith(("#", "path:")) or s.endswith(":"):
            continue
        assert "# REVIEW:" in ln, ln


def test_proposals_are_flagged_and_typed(scaffolded) -> None:
    result = scaffolded["result"]
    roles = {(p.table, p.client_column): p.role for p in result.proposals}
    assert roles[("cx_survey", "Email address")] == "identifier"
    assert roles[("customers", "Name")] == "identifier"
    assert roles[("cx_survey", NPS_Q)] == "column"
    nps = _proposal(result, "cx_survey", "nps")
    assert "recommend" in nps.reason
    for p in result.proposals:
        if p.confidence < 0.9:
            assert p.review


# --------------------------------------------------------------------------------------
# Awkward inputs
# --------------------------------------------------------------------------------------


def test_awkward_headers_are_quoted_safely(tmp_path: Path) -> None:
    headers = [
        "ID",
        'Q1: "Recommend" – how likely? #1 (0-10)',
        "- Zufriedenheit: Gesamt (1-5) ✓",
        "yes",
        "& anchor * alias",
        "{flow}: [seq]",
        "Comments, etc.\\n",
    ]
    rng = random.Random(3)
    export = tmp_path / "export"
    export.mkdir()
    with open(export / "feedback_survey.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headers)
        for i in range(50):
            w.writerow(
                [f"r{i}", rng.randint(0, 10), rng.randint(1, 5), "x", "y", rng.randint(1, 5), "ok"]
            )
    result = new_engagement(tmp_path / "e", "awkward", from_data=export)
    cfg = load_engagement_config(result.path)
    src = cfg.data.cx_survey
    assert src is not None
    assert set(src.columns.values()) <= set(headers)
    assert src.columns["nps"] == headers[1]
    for name, entry in cfg.codebook.items():
        assert src.columns[name] in headers and entry.label


def test_unreadable_files_become_notes(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "broken.xlsx").write_bytes(b"this is not a workbook")
    (export / "empty.csv").write_bytes(b"")
    (export / "brief.pdf").write_bytes(b"%PDF-1.4")
    result = new_engagement(tmp_path / "e", "acme", from_data=export)
    assert any("broken.xlsx" in n and "map it by hand" in n for n in result.notes)
    assert any("empty.csv" in n for n in result.notes)
    assert any("brief.pdf" in n for n in result.notes)
    assert (result.path / "data" / "broken.xlsx").read_bytes() == b"this is not a workbook"
    # nothing recognised: the template's placeholder survey keeps the file valid
    cfg = load_engagement_config(result.path)
    assert cfg.data.cx_survey is not None and cfg.data.cx_survey.path == "data/survey.csv"
    assert any("placeholder" in n for n in result.notes)


def test_day_first_dates_and_other_delimiters(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    rows = ["respondent_id;response_date;NPS_Score;Verbatim"]
    rows += [
        f"{i};{(i % 28) + 1:02d}/{(i % 12) + 1:02d}/2025;{i % 11};Très bien" for i in range(40)
    ]
    (export / "nps.csv").write_bytes(("\n".join(rows) + "\n").encode("cp1252"))
    result = new_engagement(tmp_path / "e", "eu", from_data=export)
    src = load_engagement_config(result.path).data.cx_survey
    assert src is not None
    assert src.date_format == "%d/%m/%Y"
    assert src.delimiter == ";" and src.encoding == "cp1252"
    assert src.columns == {
        "response_id": "respondent_id",
        "date": "response_date",
        "nps": "NPS_Score",
        "comment": "Verbatim",
    }


def test_detect_date_decides_day_month_order_by_values_above_12() -> None:
    assert scaffold._detect_date(["03/15/2026", "01/02/2026"])[:2] == ("%m/%d/%Y", False)
    assert scaffold._detect_date(["15/03/2026", "01/02/2026"])[:2] == ("%d/%m/%Y", False)
    fmt, ambiguous, why = scaffold._detect_date(["03/04/2026", "01/02/2026"])
    assert fmt == "%d/%m/%Y" and ambiguous and "12" in why
    assert scaffold._detect_date(["2026-03-15", "2026-01-02"])[0] == "%Y-%m-%d"
    assert scaffold._detect_date(["hello world", "good stay"])[0] is None


def test_spss_labels_are_used_for_matching(tmp_path: Path) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    export = tmp_path / "export"
    export.mkdir()
    frame = pd.DataFrame(
        {
            "EMPNO": [f"E{i:03d}" for i in range(40)],
            "Q7": [float(1 + i % 5) for i in range(40)],
            "DEPT": ["Front desk", "Housekeeping"] * 20,
        }
    )
    frame.loc[4, "Q7"] = 99.0
    pyreadstat.write_sav(
        frame,
        str(export / "pulse.sav"),
        column_labels=["Employee number", "I am proud to work for Northwind", "Department"],
        variable_value_labels={"Q7": {1: "Strongly disagree", 5: "Strongly agree", 99: "N/A"}},
    )
    result = new_engagement(tmp_path / "e", "ex", from_data=export)
    src = load_engagement_config(result.path).data.employees
    assert src is not None and src.path == "data/pulse.sav"
    assert src.columns == {"employee_id": "EMPNO", "pride": "Q7", "team": "DEPT"}
    assert src.missing_codes == {"pride": [99]}


def test_a_proposal_that_does_not_validate_falls_back_to_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "export"
    _write_export(export)
    monkeypatch.setattr(scaffold, "_source_lines", lambda plan: [f"{plan.table}:", "  bogus: 1"])
    result = new_engagement(tmp_path / "e", "acme", from_data=export)
    cfg = load_engagement_config(result.path)  # still valid
    assert cfg.data.cx_survey is not None and cfg.data.cx_survey.path == "data/survey.csv"
    assert any("did not validate" in n for n in result.notes)
    text = result.config_path.read_text(encoding="utf-8")
    assert re.search(r"^#\s+cx_survey:\n#\s+bogus: 1$", text, re.M)


def test_identifiers_are_found_by_their_values_too(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    rng = random.Random(5)
    with open(export / "survey.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Response ID", "Contact", "Reach me on", "E-mail opt-in", "NPS"])
        for i in range(30):
            w.writerow(
                [
                    f"r{i}",
                    f"someone{i}@example.net",
                    f"+44 20 7946 {rng.randint(1000, 9999)}",
                    rng.choice(["Y", "N"]),
                    rng.randint(0, 10),
                ]
            )
    result = new_engagement(tmp_path / "e", "ids", from_data=export)
    cfg = load_engagement_config(result.path)
    assert sorted(cfg.privacy.identifier_columns["cx_survey"]) == ["Contact", "Reach me on"]
    assert cfg.data.cx_survey.columns["nps"] == "NPS"


def test_the_scaffolded_engagement_loads_with_the_data_loader(scaffolded) -> None:
    from rox_helpers.data import load_engagement

    quality = load_engagement(scaffolded["result"].path).quality_table()
    rows = dict(zip(quality["table"], quality["rows_valid"], strict=True))
    assert rows == {"customers": 60, "cx_survey": 120}
