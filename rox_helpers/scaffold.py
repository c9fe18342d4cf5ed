"""Create a new engagement folder, optionally with a mapping proposed from client data.

:func:`new_engagement` makes ``<root>/<slug>/`` with a commented ``engagement.yml``
(from ``templates/engagement.yml``), an empty ``data/`` folder and a ``.gitignore`` that
keeps client data and run outputs out of git.

With ``from_data`` it also copies the client's files into ``data/`` (the originals are
only read), inspects a sample of each and proposes

* which canonical table each file is (by how many of its columns match),
* a mapping canonical column -> client column, by name (canonical names, synonyms and
  question keywords; difflib and token overlap) and by values (ranges, types, dates),
* the ``date_format`` of date columns (day/month order decided by values above 12),
* ``missing_codes`` guessed from suspicious answers (99, 98, "N/A", "Don't know"),
* codebook attributes for rated questions that are not canonical,
* ``privacy.identifier_columns`` for names, e-mails and phone numbers.

Every guess is written with a ``# REVIEW: <why> (confidence 0.82)`` comment, and the
written file always parses with :func:`~rox_helpers.config.parse_engagement_config`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import yaml

from rox_helpers.config import Source, parse_engagement_config, validate_slug
from rox_helpers.errors import ConfigError
from rox_helpers.io import RawTable, format_of, read_table
from rox_helpers.schemas import CANONICAL, IDENTIFIER_NAME_HINTS, TABLES, ColumnSpec

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "engagement.yml"
SAMPLE_ROWS = 5000
DATA_SUFFIXES = frozenset(
    {".csv", ".txt", ".tsv", ".parquet", ".pq", ".xlsx", ".xlsm", ".xls", ".sav", ".zsav"}
)
GITIGNORE = "# Client data and run outputs are never committed.\nruns/\ndata/\n"
DATA_README = (
    "Put the client's data exports here (CSV, Excel, Parquet, SPSS .sav) and describe "
    "them under `data:` in ../engagement.yml. This folder is git-ignored: client data "
    "is never committed.\n"
)
MAX_ATTRIBUTE_NAME = 40
MIN_CONFIDENCE = 0.5  # below this a column is not proposed
REVIEW_BELOW = 0.9  # proposals under this confidence are flagged ``review=True``


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class ColumnProposal:
    """One proposed line of the mapping.

    Parameters
    ----------
    table : str
        The canonical table the file was assigned to.
    file : str
        The file, relative to the engagement's ``data/`` folder (``"x.xlsx[Sheet]"`` for
        a sheet of a workbook with several sheets).
    canonical : str
        The canonical column, the proposed codebook attribute name (``role="attribute"``)
        or ``"identifier"`` (``role="identifier"``).
    client_column : str
        The client's header.
    confidence : float
        0-1; how sure the guess is.
    reason : str
        Why, in words (also written into the ``# REVIEW:`` comment).
    review : bool
        True when a consultant should look closely (confidence below 0.9, ambiguous
        dates, guessed missing codes).
    role : str
        ``"column"`` (canonical column), ``"attribute"`` (codebook entry) or
        ``"identifier"`` (listed under ``privacy.identifier_columns``).
    """

    table: str
    file: str
    canonical: str
    client_column: str
    confidence: float
    reason: str
    review: bool
    role: str = "column"


@dataclass
class ScaffoldResult:
    """What :func:`new_engagement` made.

    Parameters
    ----------
    path : Path
        The engagement folder.
    config_path : Path
        Its ``engagement.yml``.
    proposals : list of ColumnProposal
        The proposed mapping (empty without ``from_data``).
    notes : list of str
        Things the consultant should know (unreadable files, ignored columns, files
        that match no table, ...).
    copied : list of Path
        The files copied into ``data/``.
    """

    path: Path
    config_path: Path
    proposals: list[ColumnProposal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    copied: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def new_engagement(
    root: Path,
    slug: str,
    *,
    client_name: str | None = None,
    from_data: Path | None = None,
    template: Path | None = None,
) -> ScaffoldResult:
    """Create ``root/slug`` with ``engagement.yml``, ``data/`` and ``.gitignore``.

    Parameters
    ----------
    root : Path
        The folder holding engagements (usually ``engagements/``); created if missing.
    slug : str
        The engagement's folder name, e.g. ``"acme-hotels-2026"``.
    client_name : str, optional
        The client's name for ``client.name``; derived from the slug when omitted.
    from_data : Path, optional
        A folder of client exports. Its files are copied (never moved) into ``data/``,
        inspected, and a mapping is proposed in ``engagement.yml``.
    template : Path, optional
        The template to start from; ``templates/engagement.yml`` by default.

    Returns
    -------
    ScaffoldResult
        Paths, the proposed mapping and notes.

    Raises
    ------
    ConfigError
        Invalid slug; the folder exists and is not empty (nothing is overwritten); the
        template is missing or invalid; ``from_data`` is not a folder.
    """
    slug = validate_slug(slug)
    root = Path(root)
    target = root / slug
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"{target} already exists and is not empty; nothing was changed.",
            file=str(target),
            rule="a new engagement gets a new folder",
            fix=f"Choose another slug, or remove or rename {target} first.",
        )
    template_path = Path(template) if template is not None else DEFAULT_TEMPLATE
    text = _read_template(template_path)
    name = client_name.strip() if client_name and client_name.strip() else _name_from_slug(slug)
    rendered = render_template(text, slug=slug, client_name=name)
    try:
        parse_engagement_config(rendered, file=str(template_path))
    except ConfigError as exc:
        exc.fix = f"Correct the template {template_path} (after placeholder replacement)."
        raise
    if from_data is not None:
        from_data = Path(from_data)
        if not from_data.is_dir():
            raise ConfigError(
                f"--from-data {from_data} is not a folder.",
                file=str(from_data),
                rule="from_data is a folder of client exports",
                fix="Pass the folder that holds the client's files (csv, xlsx, parquet, sav).",
            )
        missing = [m for m in ("data", "identifiers", "codebook") if _marker_span(text, m) is None]
        if missing:
            raise ConfigError(
                f"Template {template_path} lacks the '# >>> rox:{missing[0]}' / "
                f"'# <<< rox:{missing[0]}' markers needed by --from-data.",
                file=str(template_path),
                rule="template markers",
                fix="Start from templates/engagement.yml, which has them.",
            )

    data_dir = target / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (target / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    config_path = target / "engagement.yml"
    result = ScaffoldResult(path=target, config_path=config_path)

    if from_data is not None:
        result.copied = _copy_tree(from_data, data_dir, result.notes)
        plans = _inspect(data_dir, result.copied, result.notes)
        rendered = _render_proposal(rendered, plans, result)
    readme = data_dir / "README.md"
    if not readme.exists():
        readme.write_text(DATA_README, encoding="utf-8")
    config_path.write_text(rendered, encoding="utf-8")
    return result


def render_template(text: str, *, slug: str, client_name: str) -> str:
    """Replace ``{{slug}}`` and ``{{client_name}}`` in a template.

    Parameters
    ----------
    text : str
        The template text.
    slug : str
        A validated slug (safe anywhere in YAML).
    client_name : str
        Any text; escaped for a double-quoted YAML scalar (the template writes
        ``name: "{{client_name}}"``). Line breaks become spaces.

    Returns
    -------
    str
        The rendered text.
    """
    flat = " ".join(str(client_name).split())
    quoted = _yaml_scalar(flat, force_quote=True)[1:-1]  # escaped, without the quotes
    return text.replace("{{slug}}", slug).replace("{{client_name}}", quoted)


# --------------------------------------------------------------------------------------
# Template, folders, copying
# --------------------------------------------------------------------------------------


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read the engagement template {path}: {exc}",
            file=str(path),
            rule="template exists and is UTF-8 text",
            fix="Pass an existing template, or restore templates/engagement.yml.",
        ) from None


def _name_from_slug(slug: str) -> str:
    return " ".join(p.capitalize() for p in re.split(r"[-_]+", slug) if p) or slug


def _copy_tree(src: Path, dest: Path, notes: list[str]) -> list[Path]:
    """Copy every regular, non-hidden file of ``src`` (recursively) into ``dest``."""
    copied: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            rel = path.relative_to(src)
            if fname.startswith((".", "~$")):
                notes.append(f"skipped {rel.as_posix()} (hidden or an Office lock file)")
                continue
            out = dest / rel
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
            except OSError as exc:
                notes.append(f"could not copy {rel.as_posix()}: {exc}; copy it by hand")
                continue
            copied.append(out)
    if not copied:
        notes.append(f"no files found in {src}")
    return copied


# --------------------------------------------------------------------------------------
# Text normalisation and name matching
# --------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _words(
    "a an the of to you your our we with for and or in on at was were is are how what "
    "did do does it please overall any other this that be would me my i us from by as "
    "have has had there which who when where during about all"
)
# tokens that do not say much on their own
_GENERIC = _words(
    "id date time type value status text code number name survey stage step event "
    "site unit app done success amount area community consent tier since"
)
_ID_ALIASES = _words("id ref reference no nr num number code key identifier uuid guid")
# question-text keywords for canonical columns, beyond schemas' synonyms
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "nps": ("recommend", "net promoter"),
    "csat": ("satisfied", "satisfaction"),
    "ces": ("effort", "easy", "difficult", "ease"),
    "comment": ("comment", "verbatim", "feedback", "remarks", "anything else"),
    "signup_date": ("since", "joined", "registered", "signup", "sign up", "member since"),
    "weight": ("weight", "weighting"),
}
_RATING_WORDS = _words(
    "rate rating rated score satisfied satisfaction agree likely how scale evaluate"
)


def _norm(text: object) -> str:
    """snake_case, ASCII, punctuation removed: ``"E-mail"`` -> ``"e_mail"``."""
    t = unicodedata.normalize("NFKD", str(text))
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", t)
    t = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", t)
    return re.sub(r"[^a-z0-9]+", "_", t.lower()).strip("_")


def _tokens(norm: str) -> list[str]:
    return [t for t in norm.split("_") if t]


def _content(tokens: list[str], *, alias: bool) -> list[str]:
    out = [t for t in tokens if t not in _STOPWORDS and not t.isdigit()]
    if alias and len(out) <= 3:
        out = ["id" if t in _ID_ALIASES else t for t in out]
    return out


def _tok_match(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)):
        return True
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= 6


def _name_score(texts: list[str], spec: ColumnSpec) -> tuple[float, str]:
    """How well one of the client's header texts names ``spec`` (0-1) and why."""
    candidates = [(spec.name, 1.0, "is the canonical name")]
    candidates += [(s, 0.95, f"matches synonym {s!r}") for s in spec.synonyms]
    candidates += [(k, 0.9, f"mentions {k!r}") for k in _KEYWORDS.get(spec.name, ())]
    best, why = 0.0, ""
    for text in texts:
        hnorm = _norm(text)
        if not hnorm:
            continue
        htoks = _content(_tokens(hnorm), alias=True)
        for cand, weight, reason in candidates:
            cnorm = _norm(cand)
            ctoks = _content(_tokens(cnorm), alias=True)
            score = 0.0
            if hnorm == cnorm or hnorm.replace("_", "") == cnorm.replace("_", ""):
                score = weight
            elif htoks and htoks == ctoks:
                score = weight * 0.95
            elif ctoks and htoks:
                matched = [c for c in ctoks if any(_tok_match(c, h) for h in htoks)]
                informative = [c for c in matched if c not in _GENERIC]
                if len(matched) == len(ctoks):
                    cover = len(ctoks) / max(len(htoks), len(ctoks))
                    score = weight * (0.6 + 0.3 * cover)
                    if not informative:
                        score *= 0.6
                elif (
                    informative
                    and all(any(_tok_match(h, c) for c in ctoks) for h in htoks)
                    and all(c in _GENERIC for c in ctoks if c not in matched)
                ):
                    score = weight * 0.65  # "Hotel" for hotel_id
                elif informative and len(ctoks) >= 2 and len(matched) / len(ctoks) >= 0.5:
                    score = weight * 0.4 * len(matched) / len(ctoks)
                if len(htoks) <= 4:
                    ratio = difflib.SequenceMatcher(None, hnorm, cnorm).ratio()
                    if ratio >= 0.82:
                        score = max(score, weight * ratio * 0.85)
            if score > best:
                shown = text if len(text) <= 60 else text[:57] + "..."
                best, why = score, f"header {shown!r} {reason}"
    return best, why


# --------------------------------------------------------------------------------------
# Column profiles
# --------------------------------------------------------------------------------------

_MISSING_WORDS = frozenset(
    {
        "n/a",
        "na",
        "n.a.",
        "not applicable",
        "don't know",
        "dont know",
        "do not know",
        "don’t know",
        "dk",
        "refused",
        "prefer not to say",
        "no answer",
        "unknown",
        "-",
        "--",
        "?",
        "none",
        "null",
        "#n/a",
        "missing",
        "not asked",
    }
)
_NUMERIC_CODES = (99, 98, 97, 96, 999, 998, 997, 9999, -1, -9, -99, -999)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^\+?[\d\s().\-/]{7,20}$")
_PERSON_RE = re.compile(
    r"^(?:[A-ZÀ-Þ][a-zà-ÿ'’\-]+(?:\s+[A-ZÀ-Þ][a-zà-ÿ'’\-]+){1,3}"
    r"|[A-ZÀ-Þ][a-zà-ÿ'’\-]+,\s*[A-ZÀ-Þ][a-zà-ÿ'’\-]+)$"
)
_UNNAMED_RE = re.compile(
    r"^(unnamed: ?\d+(_level_\d+)?|index|__index_level_\d+__|level_\d+)$", re.I
)
_SCALE_RES = (
    re.compile(r"(-?\d+)\s*(?:-|–|—|to)\s*(\d+)\)"),  # "(1-5)", "(0 to 10)"
    re.compile(r"(-?\d+)\s*=\s*[^,;=]{1,40}[,;/]\s*(\d+)\s*="),  # "(1 = poor, 7 = great)"
    re.compile(r"scale (?:of |from )?(-?\d+)\s*(?:-|–|to)\s*(\d+)", re.I),
)
_DATE_BASES = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d.%m.%y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
)
_TIME_SUFFIXES = (
    "",
    " %H:%M",
    " %H:%M:%S",
    "T%H:%M:%S",
    "T%H:%M",
    " %H:%M:%S.%f",
    "T%H:%M:%S.%f",
    "T%H:%M:%SZ",
    " %I:%M %p",
    " %I:%M:%S %p",
)
DATE_FORMATS = (*(b + t for b in _DATE_BASES for t in _TIME_SUFFIXES), "%Y-%m")
_STANDARD_HIGHS = (3, 4, 5, 6, 7, 10)


@dataclass
class _Profile:
    """What a sample says about one client column."""

    name: str
    texts: list[str]  # header and, for SPSS, its label
    n: int = 0
    n_missing: int = 0
    n_distinct: int = 0
    unique_ratio: float = 0.0
    numeric: bool = False
    integer: bool = False
    lo: float | None = None
    hi: float | None = None
    codes: list[int | float | str] = field(default_factory=list)
    header_scale: tuple[int, int] | None = None
    is_date: bool = False
    date_format: str | None = None
    date_note: str = ""
    date_ambiguous: bool = False
    bool_like: bool = False
    email_share: float = 0.0
    phone_share: float = 0.0
    person_share: float = 0.0
    mean_len: float = 0.0
    spaces_share: float = 0.0
    unnamed: bool = False
    is_index: bool = False
    example: str = ""

    @property
    def label(self) -> str:
        return self.texts[-1]

    @property
    def empty(self) -> bool:
        return self.n == 0

    @property
    def text(self) -> bool:
        return not (self.numeric or self.is_date or self.empty)

    def describe(self) -> str:
        if self.empty:
            return "empty in the sample"
        if self.is_date:
            return f"dates like {self.example!r}"
        if self.numeric:
            rng = f"{_num(self.lo)}-{_num(self.hi)}"
            return f"{'whole ' if self.integer else ''}numbers {rng}"
        return f"text, {self.n_distinct} distinct value(s)"


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "?"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _clean_code(v: object) -> int | float | str:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, int | float | str):
        return v
    return str(v)


def _header_scale(texts: list[str]) -> tuple[int, int] | None:
    for text in texts:
        for rx in _SCALE_RES:
            m = rx.search(text)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if lo < hi <= 100:
                    return lo, hi
    return None


def _to_numeric(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype(float)
    txt = s.astype(str).str.strip()
    num = pd.to_numeric(txt, errors="coerce")
    if num.notna().mean() < 0.95 and txt.str.fullmatch(r"-?\d+,\d+").any():
        alt = pd.to_numeric(txt.str.replace(",", ".", regex=False), errors="coerce")
        if alt.notna().sum() > num.notna().sum():
            num = alt
    return num.astype(float)


def _detect_date(values: list[str]) -> tuple[str | None, bool, str]:
    """The strftime format most values follow, whether day/month was ambiguous, and why."""
    sample = values[:400]
    if not sample:
        return None, False, ""
    probe = sample[:40]
    if sum(
        bool(re.search(r"\d", v)) and bool(re.search(r"[-/.:\s]", v)) for v in probe
    ) < 0.8 * len(probe):
        return None, False, ""
    shares: dict[str, float] = {}
    for fmt in DATE_FORMATS:
        ok = 0
        for i, v in enumerate(sample):
            try:
                datetime.strptime(v, fmt)
                ok += 1
            except ValueError:
                if i >= 20 and ok < 0.5 * (i + 1):
                    break
        share = ok / len(sample)
        if share >= 0.95:
            shares[fmt] = share
    if not shares:
        return None, False, ""

    def _day_first(f: str) -> bool:
        return "%d" in f and "%m" in f and f.index("%d") < f.index("%m")

    best = max(shares, key=lambda f: (shares[f], _day_first(f)))
    swapped = (
        best.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m") if "%d" in best else None
    )
    if swapped and swapped in shares and shares[swapped] == shares[best]:
        return (
            best,
            True,
            "day and month cannot be told apart (no value above 12); day first assumed",
        )
    if not best.startswith("%Y") and "%d" in best and "%m" in best:
        day_first = best.index("%d") < best.index("%m")
        pos = "first" if day_first else "second"
        return best, False, f"the {pos} number goes above 12, so it is the day"
    return best, False, ""


def _profile(raw: RawTable, col: object) -> _Profile:
    s = raw.frame[col]
    header = "" if col is None or (isinstance(col, float) and math.isnan(col)) else str(col)
    texts = [header]
    label = raw.column_labels.get(header) if raw.column_labels else None
    if label and label != header:
        texts.append(str(label))
    p = _Profile(name=header, texts=texts)
    p.unnamed = not header.strip() or bool(_UNNAMED_RE.fullmatch(header.strip()))
    p.header_scale = _header_scale(texts)

    is_dt = pd.api.types.is_datetime64_any_dtype(s)
    vals = s.dropna()
    if not is_dt and not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        if len(vals) and not all(isinstance(v, str) for v in vals.head(50)):
            # dates or mixed objects (SPSS/parquet): keep real dates, stringify the rest
            if all(hasattr(v, "year") for v in vals.head(50)):
                is_dt = True
            else:
                vals = vals.astype(str)
        if not is_dt:
            vals = vals.astype(str).str.strip()
            vals = vals[vals != ""]
    p.n = len(vals)
    p.n_missing = int(len(s) - p.n)
    if not p.n:
        return p
    p.n_distinct = int(vals.nunique())
    p.unique_ratio = p.n_distinct / p.n
    p.example = str(vals.iloc[0])

    if is_dt:
        p.is_date = True
        return p

    # value labels that mean "no answer" (SPSS)
    labelled_codes = [
        _clean_code(k)
        for k, lab in (raw.value_labels.get(header) or {}).items()
        if str(lab).strip().lower() in _MISSING_WORDS
    ]

    num = _to_numeric(vals)
    if pd.api.types.is_numeric_dtype(vals) or pd.api.types.is_bool_dtype(vals):
        word_codes: list[str] = []
        rest_num = num
    else:
        lower = vals.str.lower()
        is_word = lower.isin(_MISSING_WORDS) & num.isna()
        word_codes = sorted(set(vals[is_word]))
        rest_num = num[~is_word]
        leftovers = vals[~is_word & num.isna()]
        # a handful of odd labels in an otherwise numeric column are codes too
        if (
            len(rest_num)
            and rest_num.notna().mean() >= 0.95
            and leftovers.nunique() <= 3
            and len(leftovers)
        ):
            word_codes += sorted(set(leftovers))
            rest_num = rest_num.dropna()
    if len(rest_num) and rest_num.notna().all():
        p.numeric = True
        core = rest_num[~rest_num.isin(labelled_codes)]
        cand = core[core.isin(_NUMERIC_CODES)]
        core = core[~core.isin(_NUMERIC_CODES)]
        codes: list[int | float | str] = list(labelled_codes)
        if len(core):
            lo, hi = float(core.min()), float(core.max())
            integer = bool((core == core.round()).all())
            rating = integer and lo >= 0 and hi <= 10
            pct = integer and lo >= 0 and hi <= 100
            for c in sorted(set(cand)):
                if (rating and not lo <= c <= hi) or (pct and c >= 999):
                    codes.append(_clean_code(c))
                else:
                    core = pd.concat([core, cand[cand == c]])
            if p.header_scale and p.header_scale[0] >= 1 and (core == 0).any() and rating:
                codes.append(0)
                core = core[core != 0]
        if len(core):
            p.lo, p.hi = float(core.min()), float(core.max())
            p.integer = bool((core == core.round()).all())
        p.codes = sorted(set(codes), key=lambda c: (isinstance(c, str), str(c))) + word_codes
        distinct = set(core.unique())
        p.bool_like = bool(distinct) and distinct <= {0.0, 1.0}
        # an unnamed, strictly +1 increasing integer column is a row index
        if p.unnamed and p.integer and len(rest_num) == len(s):
            diffs = rest_num.diff().dropna()
            p.is_index = bool(len(diffs) == 0 or (diffs == 1).all())
        return p

    strs = vals.astype(str)
    lower = strs.str.lower()
    p.bool_like = bool(set(lower.unique()) <= {"y", "n", "yes", "no", "true", "false", "t", "f"})
    p.mean_len = float(strs.str.len().mean())
    p.spaces_share = float(strs.str.contains(" ", regex=False).mean())
    sample = strs.head(1000)
    p.email_share = float(sample.str.fullmatch(_EMAIL_RE).mean())
    phone = (
        sample.str.fullmatch(_PHONE_RE)
        & (sample.str.count(r"\d") >= 7)
        & sample.str.contains(r"^\+|^0|[\s()\-]", regex=True)
    )
    p.phone_share = float(phone.mean())
    p.person_share = float(sample.str.fullmatch(_PERSON_RE).mean())
    clean = [v for v in pd.unique(strs) if v.lower() not in _MISSING_WORDS]
    fmt, ambiguous, why = _detect_date(clean)
    if fmt:
        p.is_date, p.date_format, p.date_ambiguous, p.date_note = True, fmt, ambiguous, why
        p.codes = sorted({v for v in strs if v.lower() in _MISSING_WORDS})
    return p


# --------------------------------------------------------------------------------------
# Checks of values against a canonical column
# --------------------------------------------------------------------------------------


def _value_fit(p: _Profile, spec: ColumnSpec) -> tuple[float, str]:
    """(adjustment, why): ``+0.1`` good, ``0`` neutral, negative when values contradict."""
    if p.empty:
        return 0.0, "column is empty in the sample"
    kind = spec.kind
    if kind in ("date", "datetime", "period"):
        if p.is_date:
            return 0.1, p.describe()
        return -1.0, f"values are not dates ({p.describe()})"
    if p.is_date:
        return -1.0, "values are dates"
    if kind == "id":
        if p.email_share > 0.5 or (p.text and p.mean_len > 40):
            return -1.0, "values are not codes"
        if p.numeric and not p.integer:
            return -1.0, "values are decimals, not codes"
        if spec.unique and p.unique_ratio >= 0.98:
            return 0.1, "values are unique codes"
        if spec.unique and p.unique_ratio < 0.8:
            return -0.3, f"only {p.unique_ratio:.0%} of values are unique"
        return 0.0, ""
    if kind == "bool":
        return (0.1, "yes/no values") if p.bool_like else (-1.0, f"not yes/no ({p.describe()})")
    if kind in ("float", "int"):
        if not p.numeric:
            return -1.0, f"values are not numbers ({p.describe()})"
        lo_ok = spec.min is None or (p.lo is not None and p.lo >= spec.min)
        hi_ok = spec.max is None or (p.hi is not None and p.hi <= spec.max)
        if not (lo_ok and hi_ok):
            return -1.0, f"{p.describe()} outside {_num(spec.min)}-{_num(spec.max)}"
        if spec.min is not None and spec.max is not None:
            if p.header_scale and p.header_scale != (spec.min, spec.max):
                return (
                    -1.0,
                    f"the question's scale {p.header_scale} is not {_num(spec.min)}-{_num(spec.max)}",
                )
            if spec.name == "nps" and (p.hi or 0) < 8 and p.n >= 30:
                return -0.3, f"{p.describe()}; NPS answers reach 9-10"
            bonus = 0.15 if p.header_scale else 0.1
            return bonus, p.describe()
        return 0.05, p.describe()
    # str
    if spec.free_text:
        if p.text and (p.mean_len >= 15 or p.spaces_share >= 0.5):
            return 0.1, "free text"
        if p.numeric:
            return -1.0, "values are numbers"
        return 0.0, ""
    if p.numeric and not p.integer:
        return -0.5, "values are decimals"
    return 0.0, ""


def _identifier(p: _Profile) -> tuple[float, str] | None:
    """Confidence and reason that ``p`` holds a direct identifier, or None."""
    if p.is_index or p.is_date:
        return None
    toks = _tokens(_norm(p.name))
    hint = ""
    for h in IDENTIFIER_NAME_HINTS:
        htoks = h.split("_")
        if any(toks[i : i + len(htoks)] == htoks for i in range(len(toks))):
            hint = h
            break
    if not hint:
        hint = next((t for t in toks if t.endswith("name") and 5 <= len(t) <= 9), "")
    if p.email_share >= 0.5:
        return 0.97, "values are e-mail addresses"
    if p.phone_share >= 0.5 and (hint or not p.numeric):
        return 0.9, "values look like phone numbers"
    if hint and not p.empty and p.person_share >= 0.5 and "name" in hint:
        return 0.95, f"header mentions {hint!r} and values look like people's names"
    if p.bool_like:
        return None  # "E-mail opt-in: Y/N" is a consent flag, not an address
    if hint and (p.text or p.empty or hint in ("phone", "mobile", "telephone", "tel")):
        if len(_content(toks, alias=False)) <= 4:
            return 0.8, f"header mentions {hint!r}"
        return 0.6, f"the question mentions {hint!r}"
    if p.person_share >= 0.8 and p.unique_ratio >= 0.8 and p.n_distinct >= 5:
        return 0.6, "values look like people's names"
    return None


# --------------------------------------------------------------------------------------
# Inspection: files -> candidates -> plans
# --------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    rel: str
    label: str
    sheet: str | None
    raw: RawTable
    profiles: list[_Profile]


@dataclass
class _Match:
    canonical: str
    profile: _Profile
    confidence: float
    reason: str
    review: bool = False


@dataclass
class _Attribute:
    name: str
    profile: _Profile
    confidence: float
    reason: str
    scale: tuple[float, float]


@dataclass
class _Plan:
    cand: _Candidate
    table: str | None = None
    score: float = 0.0
    confidence: float = 0.0
    reason: str = ""
    matches: list[_Match] = field(default_factory=list)
    attributes: list[_Attribute] = field(default_factory=list)
    identifiers: list[tuple[_Profile, float, str]] = field(default_factory=list)
    ignored: list[tuple[_Profile, str]] = field(default_factory=list)
    unmapped: list[_Profile] = field(default_factory=list)
    active: bool = True


_FILE_HINTS: dict[str, tuple[str, ...]] = {
    "customers": ("customer", "guest", "crm", "member", "client", "loyalty"),
    "interactions": ("interaction", "event", "log", "booking", "transaction", "visit", "touch"),
    "cx_survey": ("survey", "nps", "feedback", "response", "cx", "csat"),
    "employees": ("employee", "staff", "hr", "pulse", "people", "ex"),
    "units": ("unit", "hotel", "store", "branch", "site", "kpi", "property"),
    "network": ("network", "nomination", "edge", "peer", "ona"),
}
_PRIMARY_DATE = {"cx_survey": "date", "customers": "signup_date", "interactions": "timestamp"}


def _inspect(data_dir: Path, files: list[Path], notes: list[str]) -> list[_Plan]:
    cands: list[_Candidate] = []
    for path in files:
        rel = path.relative_to(data_dir).as_posix()
        if path.suffix.lower() not in DATA_SUFFIXES:
            notes.append(f"{rel} copied but not inspected (not csv/xlsx/parquet/sav)")
            continue
        sheets: list[str | None] = [None]
        if format_of(path) == "excel":
            try:
                with pd.ExcelFile(path) as book:
                    names = [str(n) for n in book.sheet_names]
                if len(names) > 1:
                    sheets = list(names)
            except Exception as exc:
                notes.append(f"could not read {rel}: {_why(exc)}; map it by hand")
                continue
        for sheet in sheets:
            label = f"{rel}[{sheet}]" if sheet is not None else rel
            try:
                raw = read_table(path, sheet=sheet, nrows=SAMPLE_ROWS)
            except Exception as exc:
                notes.append(f"could not read {label}: {_why(exc)}; map it by hand")
                continue
            if raw.frame.shape[1] == 0 or raw.frame.shape[0] == 0:
                notes.append(f"{label} has no rows or no columns; map it by hand")
                continue
            profiles = []
            for col in raw.frame.columns:
                try:
                    profiles.append(_profile(raw, col))
                except Exception as exc:
                    notes.append(f"could not inspect column {col!r} of {label}: {_why(exc)}")
            cands.append(_Candidate(rel, label, sheet, raw, profiles))
    codebook_names: set[str] = set()
    plans = [_plan(c, codebook_names) for c in cands]
    # one source per table: the best-scoring file wins, the others are commented out
    for table in TABLES:
        same = sorted((p for p in plans if p.table == table), key=lambda p: -p.score)
        for other in same[1:]:
            other.active = False
            notes.append(
                f"{other.cand.label} also looks like {table}, but {same[0].cand.label} fits "
                f"better; it is written commented out (one source per table; merge the files "
                f"or swap them by hand)"
            )
    for plan in plans:
        if plan.table is None:
            notes.append(f"{plan.cand.label}: no canonical table fits; map it by hand")
        for prof, why in plan.ignored:
            notes.append(f"{plan.cand.label}: ignored column {prof.name!r} ({why})")
    return plans


def _why(exc: Exception) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    msg = re.sub(r"^Could not read .+? as \w+: ", "", " ".join(str(msg).split()))
    return msg.rstrip(".")


def _assign(table: str, profiles: list[_Profile]) -> list[_Match]:
    """Greedy one-to-one matching of canonical columns of ``table`` to profiles."""
    spec = CANONICAL[table]
    pairs: list[tuple[float, str, int, str]] = []
    for i, p in enumerate(profiles):
        for cname, cspec in spec.columns.items():
            name_score, name_why = _name_score(p.texts, cspec)
            if name_score <= 0:
                continue
            adj, value_why = _value_fit(p, cspec)
            score = name_score * 0.4 if adj <= -1 else min(0.99, name_score + adj)
            if score < MIN_CONFIDENCE:
                continue
            why = name_why + (f"; {value_why}" if value_why else "")
            pairs.append((score, cname, i, why))
    pairs.sort(key=lambda t: -t[0])
    used_c: set[str] = set()
    used_p: set[int] = set()
    out: list[_Match] = []
    for score, cname, i, why in pairs:
        if cname in used_c or i in used_p:
            continue
        used_c.add(cname)
        used_p.add(i)
        out.append(_Match(cname, profiles[i], round(score, 2), why))
    # the table's main date: the only date column left, even without a telling header
    primary = _PRIMARY_DATE.get(table)
    if primary and primary not in used_c:
        dates = [i for i, p in enumerate(profiles) if p.is_date and i not in used_p]
        if len(dates) == 1:
            p = profiles[dates[0]]
            out.append(
                _Match(
                    primary,
                    p,
                    0.5,
                    f"the only date column left ({p.describe()}); its "
                    f"header does not say which date it is",
                    review=True,
                )
            )
    return out


def _plan(cand: _Candidate, codebook_names: set[str]) -> _Plan:
    plan = _Plan(cand)
    usable: list[_Profile] = []
    for p in cand.profiles:
        if p.unnamed and (p.is_index or p.empty):
            plan.ignored.append((p, "unnamed row index" if p.is_index else "unnamed and empty"))
            continue
        ident = _identifier(p)
        if ident:
            plan.identifiers.append((p, *ident))
            continue
        usable.append(p)
    fname = _norm(cand.label)
    scored: list[tuple[float, str, list[_Match]]] = []
    for table in TABLES:
        spec = CANONICAL[table]
        matches = _assign(table, usable)
        got = {m.canonical for m in matches}
        score = sum(m.confidence for m in matches)
        if not all(r in got for r in spec.required):
            score *= 0.4
        if spec.key and spec.key[0] not in got and not spec.required:
            score *= 0.75
        if spec.open_measures and table in ("cx_survey", "employees"):
            ratings = sum(
                1
                for p in usable
                if p.numeric
                and p.integer
                and (p.hi or 0) <= 10
                and p.n_distinct >= 3
                and id(p) not in {id(m.profile) for m in matches}
            )
            score += min(1.0, 0.2 * ratings) if score else 0
        if any(_tok_match(h, t) for h in _FILE_HINTS[table] for t in _tokens(fname)):
            score += 0.5 if score else 0
        scored.append((score, table, matches))
    scored.sort(key=lambda t: -t[0])
    best, table, matches = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0.0
    if best < 0.8:
        plan.unmapped = usable
        return plan
    plan.table, plan.score, plan.matches = table, best, matches
    plan.confidence = round(min(0.99, 0.5 + 0.5 * (best - second) / best), 2)
    n = len(matches)
    plan.reason = f"{n} column(s) match {table}" + (
        f"; next best {scored[1][1]} ({second:.1f} vs {best:.1f})" if second else ""
    )
    # a header that names a text column of the table exactly ("Name" of a hotel in units)
    # is that column, not a person's name, unless its values are e-mails or phone numbers
    got = {m.canonical for m in matches}
    for ident in list(plan.identifiers):
        p, _conf, why = ident
        if why.startswith(("values are", "values look like phone")):
            continue
        for cname, cspec in CANONICAL[table].columns.items():
            score, name_why = _name_score(p.texts[:1], cspec)
            if cname not in got and cspec.kind == "str" and score >= 0.95:
                plan.identifiers.remove(ident)
                plan.matches.append(_Match(cname, p, 0.8, f"{name_why} (not a person's name?)"))
                got.add(cname)
                break
    mapped = {id(m.profile) for m in plan.matches}
    taken = set(CANONICAL[table].columns) | codebook_names
    for p in usable:
        if id(p) in mapped:
            continue
        attr = _attribute(p, table, taken) if CANONICAL[table].open_measures else None
        if attr:
            taken.add(attr.name)
            codebook_names.add(attr.name)
            plan.attributes.append(attr)
        else:
            plan.unmapped.append(p)
    return plan


def _scale_of(p: _Profile) -> tuple[float, float]:
    if p.header_scale:
        return float(p.header_scale[0]), float(p.header_scale[1])
    lo = 0.0 if (p.lo or 0) <= 0 else 1.0
    hi = next((h for h in _STANDARD_HIGHS if h >= (p.hi or 0)), p.hi or lo + 1)
    return lo, float(max(hi, lo + 1))


def _attribute(p: _Profile, table: str, taken: set[str]) -> _Attribute | None:
    """A rated question that is not canonical, as a codebook attribute."""
    if not (p.numeric and p.integer) or p.is_index or p.lo is None or p.hi is None:
        return None
    if table not in ("cx_survey", "employees"):
        return None
    limit = p.header_scale[1] if p.header_scale else 10
    if p.lo < 0 or p.hi > limit or (p.n_distinct < 3 and not p.header_scale):
        return None
    words = set(_tokens(_norm(" ".join(p.texts))))
    conf = 0.6 + (0.15 if words & _RATING_WORDS else 0) + (0.1 if p.header_scale else 0)
    scale = _scale_of(p)
    name = _attribute_name(p, taken)
    why = f"rated question ({p.describe()}, scale {_num(scale[0])}-{_num(scale[1])})"
    if p.codes:
        why += f"; {_codes_phrase(p.codes)}"
    if (p.lo or 0) == 0 and scale[0] == 0 and not p.header_scale:
        why += "; answers include 0: if the scale starts at 1, make 0 a missing code"
    return _Attribute(name, p, round(min(conf, 0.89), 2), why, scale)


_LEADING = (
    ("how", "would", "you", "rate"),
    ("how", "do", "you", "rate"),
    ("how", "satisfied", "were", "you", "with"),
    ("how", "satisfied", "are", "you", "with"),
    ("please", "rate"),
    ("please",),
    ("rate",),
    ("rating", "of"),
    ("rating",),
    ("satisfaction", "with"),
    ("overall",),
    ("the",),
)


def _attribute_name(p: _Profile, taken: set[str]) -> str:
    """snake_case name from a question text, <= 40 characters, unique among ``taken``."""
    var = _norm(p.name)
    if p.label != p.name and var and not re.fullmatch(r"q?\d+[a-z]?(_\d+[a-z]?)*", var):
        base_toks = _tokens(var)  # a meaningful SPSS variable name
    else:
        text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", p.label)  # "(1-10)", "[scale]"
        text = re.sub(
            r"^\s*(?:q\d+[a-z]?(?:[._-]\d+[a-z]?)*|\d+[.)])[\s.:)-]*", "", text, flags=re.I
        )
        text = text.split("?")[0] or text
        # "Please rate: cleanliness of the room" names the attribute after a short lead-in
        head, sep, tail = text.partition(":")
        text = tail if sep and tail.strip() and len(_tokens(_norm(head))) <= 4 else head
        base_toks = _tokens(_norm(text))
        changed = True
        while changed and base_toks:
            changed = False
            for lead in _LEADING:
                if tuple(base_toks[: len(lead)]) == lead and len(base_toks) > len(lead):
                    base_toks = base_toks[len(lead) :]
                    changed = True
    if len("_".join(base_toks)) > MAX_ATTRIBUTE_NAME:
        base_toks = base_toks[:1] + [t for t in base_toks[1:] if t not in _STOPWORDS]
    while len(base_toks) > 1 and len("_".join(base_toks)) > MAX_ATTRIBUTE_NAME:
        base_toks = base_toks[:-1]
    base = "_".join(base_toks)[:MAX_ATTRIBUTE_NAME].strip("_") or "attribute"
    if not base[0].isalpha():
        base = ("q_" + base)[:MAX_ATTRIBUTE_NAME]
    name, i = base, 2
    while name in taken or yaml.safe_load(name) != name:
        suffix = f"_{i}"
        name = base[: MAX_ATTRIBUTE_NAME - len(suffix)] + suffix
        i += 1
    return name


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")


def _yaml_scalar(value: object, *, force_quote: bool = False) -> str:
    """A YAML scalar for ``value``: numbers bare, text plain when safe, else double-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    if not force_quote and _PLAIN_RE.fullmatch(text):
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    dumped = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=2**31 - 1)
    return dumped.strip().removesuffix("...").strip()


def _flow_list(values: list[object]) -> str:
    return "[" + ", ".join(_yaml_scalar(v, force_quote=True) for v in values) + "]"


def _codes_phrase(codes: list[int | float | str]) -> str:
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in codes)
    verb = "looks like a 'no answer' code" if len(codes) == 1 else "look like 'no answer' codes"
    return f"{shown} {verb}, not an answer on the scale"


def _c(text: str) -> str:
    """Text safe inside a one-line YAML comment."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())


def _review(reason: str, confidence: float) -> str:
    return f"# REVIEW: {_c(reason)} (confidence {confidence:.2f})"


def _marker_span(text: str, name: str) -> tuple[int, int, str] | None:
    """(start line, end line, indentation) of the ``# >>> rox:name`` block."""
    lines = text.splitlines()
    start = end = None
    for i, line in enumerate(lines):
        s = line.strip()
        if start is None and s.startswith(f"# >>> rox:{name}"):
            start = i
        elif start is not None and s.startswith(f"# <<< rox:{name}"):
            end = i
            break
    if start is None or end is None:
        return None
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    return start, end, indent


def _replace_block(text: str, name: str, body: list[str]) -> str:
    span = _marker_span(text, name)
    assert span is not None  # checked before anything was created
    start, end, indent = span
    lines = text.splitlines()
    new = lines[: start + 1] + [indent + b if b else "" for b in body] + lines[end:]
    return "\n".join(new) + ("\n" if text.endswith("\n") else "")


def _source_lines(plan: _Plan) -> list[str]:
    """The YAML lines (relative indentation) of one source."""
    cand, table = plan.cand, plan.table
    assert table is not None
    path = f"data/{cand.rel}"
    out = [f"{table}:", f"  {_review(f'{cand.label} is {table}: {plan.reason}', plan.confidence)}"]
    out.append(f"  path: {_yaml_scalar(path)}")
    if Source(path=path).resolved_format() != cand.raw.format:
        out.append(f"  format: {cand.raw.format}")
    if cand.sheet is not None:
        out.append(f"  sheet: {_yaml_scalar(cand.sheet, force_quote=True)}")
    if cand.raw.encoding and cand.raw.encoding not in ("utf-8", "utf-8-sig"):
        out.append(f"  encoding: {cand.raw.encoding}  # detected")
    if cand.raw.delimiter and cand.raw.delimiter != ",":
        out.append(f"  delimiter: {_yaml_scalar(cand.raw.delimiter, force_quote=True)}  # detected")
    dated = [m for m in plan.matches if m.profile.date_format]
    formats = {m.profile.date_format for m in dated}
    if len(formats) == 1:
        m = dated[0]
        why = f"dates in {m.profile.name!r} look like {m.profile.example!r}"
        why += f"; {m.profile.date_note}" if m.profile.date_note else ""
        conf = 0.6 if m.profile.date_ambiguous else 0.9
        out.append(
            f"  date_format: {_yaml_scalar(m.profile.date_format, force_quote=True)}  "
            f"{_review(why, conf)}"
        )
    elif formats:
        out.append("  date_formats:")
        for m in dated:
            why = f"dates like {m.profile.example!r}"
            why += f"; {m.profile.date_note}" if m.profile.date_note else ""
            conf = 0.6 if m.profile.date_ambiguous else 0.9
            out.append(
                f"    {m.canonical}: {_yaml_scalar(m.profile.date_format, force_quote=True)}"
                f"  {_review(why, conf)}"
            )
    columns = [(m.canonical, m.profile, m.confidence, m.reason) for m in plan.matches]
    columns += [(a.name, a.profile, a.confidence, a.reason) for a in plan.attributes]
    if columns:
        out.append("  columns:")
        for canon, prof, conf, why in columns:
            out.append(
                f"    {canon}: {_yaml_scalar(prof.name, force_quote=True)}  {_review(why, conf)}"
            )
    else:
        out.append("  columns: {}  # REVIEW: no column could be matched; map them by hand")
    coded = [m for m in plan.matches if m.profile.codes]
    if coded:
        out.append("  missing_codes:")
        for m in coded:
            why = _codes_phrase(m.profile.codes)
            out.append(f"    {m.canonical}: {_flow_list(m.profile.codes)}  {_review(why, 0.7)}")
    if plan.unmapped:
        out.append("  # Client columns not mapped (add them under columns: if needed):")
        for p in plan.unmapped:
            out.append(f"  #   {_c(_yaml_scalar(p.name, force_quote=True))}: {_c(p.describe())}")
    for p, why in plan.ignored:
        out.append(f"  # Ignored: {_c(_yaml_scalar(p.name, force_quote=True))} ({_c(why)})")
    if plan.identifiers:
        names = ", ".join(_yaml_scalar(p.name, force_quote=True) for p, _, _ in plan.identifiers)
        out.append(f"  # Direct identifiers (see privacy.identifier_columns): {_c(names)}")
    return out


def _render_proposal(text: str, plans: list[_Plan], result: ScaffoldResult) -> str:
    """Write the plans into the marker blocks of the rendered template."""
    active = [p for p in plans if p.table and p.active]
    data_lines: list[str] = []
    if not any(p.table == "cx_survey" for p in active):
        result.notes.append(
            "no survey file recognised: the cx_survey entry is a placeholder (the outcome, "
            "NPS, comes from it); point it at the survey export or change `outcome:`"
        )
        span = _marker_span(text, "data")
        assert span is not None
        start, end, indent = span
        data_lines += [
            line[len(indent) :] if line.startswith(indent) else line.lstrip()
            for line in text.splitlines()[start + 1 : end]
        ]
    for plan in active:
        data_lines += _source_lines(plan)
        _collect(plan, result)
        if plan.table == "cx_survey" and all(m.canonical != "nps" for m in plan.matches):
            result.notes.append(
                f"{plan.cand.label}: no NPS question recognised; map `nps` by hand under "
                f"data.cx_survey.columns or choose another `outcome:`"
            )
    for plan in plans:
        if plan.table and not plan.active:
            data_lines.append(f"# Also {plan.table}, not used (one source per table):")
            data_lines += ["# " + line for line in _source_lines(plan)]
    for plan in plans:
        if plan.table is None:
            cols = ", ".join(_yaml_scalar(p.name, force_quote=True) for p in plan.cand.profiles)
            data_lines.append(
                f"# {_c(plan.cand.label)}: no canonical table fits; columns: {_c(cols)}"
            )
    ident_lines: list[str] = []
    for plan in active:
        if plan.identifiers:
            ident_lines.append(f"  {plan.table}:")
            for p, conf, why in plan.identifiers:
                ident_lines.append(
                    f"    - {_yaml_scalar(p.name, force_quote=True)}  {_review(why, conf)}"
                )
    ident_lines = (
        ["identifier_columns:", *ident_lines] if ident_lines else ["identifier_columns: {}"]
    )
    for plan in plans:
        if plan.table is None or not plan.active:
            for p, _conf, _why in plan.identifiers:
                result.notes.append(
                    f"{plan.cand.label}: {p.name!r} looks like a direct identifier; list it "
                    f"under privacy.identifier_columns once the file has a table"
                )
    book: list[str] = []
    for plan in active:
        for a in plan.attributes:
            book.append(
                f"  {a.name}:  {_review(f'from {plan.cand.label}: {a.reason}', a.confidence)}"
            )
            book.append(
                f"    label: {_yaml_scalar(' '.join(a.profile.label.split()), force_quote=True)}"
            )
            seen = f"{_num(a.profile.lo)}-{_num(a.profile.hi)}"
            how = "from the question text" if a.profile.header_scale else f"answers seen: {seen}"
            book.append(f"    scale: {_flow_list(list(a.scale))}  {_review(how, a.confidence)}")
            if a.profile.codes:
                why = _codes_phrase(a.profile.codes)
                book.append(
                    f"    missing_codes: {_flow_list(a.profile.codes)}  {_review(why, 0.7)}"
                )
            book.append("    higher_is_better: true")
    book = ["codebook:", *book] if book else ["codebook: {}"]

    new = _replace_block(text, "data", data_lines or ["{}"])
    new = _replace_block(new, "identifiers", ident_lines)
    new = _replace_block(new, "codebook", book)
    try:
        parse_engagement_config(new, file="engagement.yml")
    except ConfigError as exc:  # a bug here must not cost the consultant the proposal
        result.notes.append(
            f"the proposed mapping did not validate ({exc.message}); engagement.yml holds the "
            f"plain template with the proposal commented out at the end"
        )
        proposal = ["data:", *("  " + ln for ln in data_lines)]
        proposal += ["privacy:", *("  " + ln for ln in ident_lines), *book]
        keep = ["# " + "".join(c if c.isprintable() else " " for c in ln) for ln in proposal]
        return (
            text.rstrip("\n")
            + "\n\n\n# --- Proposed mapping (did not validate: fix it, then move it up) ---\n"
            + "\n".join(keep)
            + "\n"
        )
    return new


def _collect(plan: _Plan, result: ScaffoldResult) -> None:
    table, label = plan.table or "", plan.cand.label
    for m in plan.matches:
        reason = m.reason
        if m.profile.date_format:
            reason += f"; date_format {m.profile.date_format!r}"
            if m.profile.date_ambiguous:
                reason += " (day/month ambiguous)"
        if m.profile.codes:
            reason += f"; missing codes {m.profile.codes}"
        review = (
            m.review
            or m.confidence < REVIEW_BELOW
            or m.profile.date_ambiguous
            or bool(m.profile.codes)
        )
        result.proposals.append(
            ColumnProposal(table, label, m.canonical, m.profile.name, m.confidence, reason, review)
        )
    for a in plan.attributes:
        result.proposals.append(
            ColumnProposal(
                table, label, a.name, a.profile.name, a.confidence, a.reason, True, "attribute"
            )
        )
    for p, conf, why in plan.identifiers:
        result.proposals.append(
            ColumnProposal(
                table, label, "identifier", p.name, conf, why, conf < REVIEW_BELOW, "identifier"
            )
        )
