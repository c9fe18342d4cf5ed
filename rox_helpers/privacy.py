"""Privacy helpers: pseudonymisation keys, identifier detection and text scrubbing.

Privacy is part of the product, not an afterthought:

* **Identifiers are pseudonymised on load.**  :func:`pseudonymise` replaces a
  value by a keyed hash (HMAC-SHA256, truncated to 16 hex characters).  The
  same value always gives the same token with the same key, so tables can still
  be joined, but without the key nobody can test a guess ("is C-3f2a… Anna
  Schmidt?").  The key comes from :func:`load_or_create_key` and is kept
  *outside* the engagement folder, so sharing or archiving the folder does not
  share the key.
* **Direct identifiers are found** by :func:`detect_identifier_columns`
  (column names like ``guest_name`` or ``email`` and columns whose values look
  like e-mail addresses, phone numbers or IP addresses).
* **Free text is scrubbed** by :func:`scrub_text`: e-mail addresses, phone
  numbers and *known* person names (from the customer and staff tables, see
  :class:`NameMatcher`) are masked.  Names that appear in no table cannot be
  recognised reliably and are not promised to be masked.

All functions work on whole :class:`pandas.Series` and do the expensive work
once per *distinct* value, so they scale to millions of rows.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rox_helpers.errors import PrivacyError
from rox_helpers.schemas import IDENTIFIER_NAME_HINTS

__all__ = [
    "KEY_DIR_ENV_VAR",
    "KEY_ENV_VAR",
    "NameMatcher",
    "PseudonymKey",
    "ScrubResult",
    "default_key_dir",
    "detect_identifier_columns",
    "load_or_create_key",
    "pseudonymise",
    "scrub_text",
]

KEY_ENV_VAR = "ROX_PSEUDONYM_KEY"
"""Environment variable holding the pseudonymisation key (hex or any string, >= 16 chars)."""

KEY_DIR_ENV_VAR = "ROX_KEY_DIR"
"""Environment variable naming the folder for generated key files."""

MIN_KEY_CHARS = 16
"""Minimum length of a key given through :data:`KEY_ENV_VAR`."""

TOKEN_HEX_CHARS = 16
"""Length of the hex part of a pseudonym token (64 bits)."""

_KEY_FILE_SUFFIX = ".key"


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class PseudonymKey:
    """A secret key for :func:`pseudonymise`, with where it came from.

    Parameters
    ----------
    key : bytes
        The secret.  Never printed, logged or written to a manifest.
    source : str
        Human-readable origin, e.g. ``"environment variable ROX_PSEUDONYM_KEY"``
        or ``"key file /home/me/.config/rox/keys/sample-1a2b3c.key (created
        2026-01-05)"``.  Never contains the key.
    fingerprint : str
        First 8 hex characters of ``sha256(key)``.  Safe to store in a run
        manifest: it shows which key was used without revealing it.

    Notes
    -----
    ``repr()`` and ``str()`` show only ``source`` and ``fingerprint``.
    """

    key: bytes = field(repr=False)
    source: str
    fingerprint: str

    @classmethod
    def from_bytes(cls, key: bytes, source: str = "in-memory key") -> PseudonymKey:
        """Build a key from raw bytes, computing the fingerprint.

        Parameters
        ----------
        key : bytes
            The secret, at least 16 bytes.
        source : str, default "in-memory key"
            Description of where the key came from.

        Returns
        -------
        PseudonymKey

        Raises
        ------
        PrivacyError
            If the key is shorter than 16 bytes.
        """
        if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_CHARS:
            raise PrivacyError(
                f"A pseudonymisation key must be at least {MIN_KEY_CHARS} bytes long.",
                file=source,
                rule="key length",
                fix="Use secrets.token_bytes(32) or load_or_create_key().",
            )
        key = bytes(key)
        return cls(key=key, source=source, fingerprint=_fingerprint(key))

    def __repr__(self) -> str:
        return f"PseudonymKey(source={self.source!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__


def default_key_dir() -> Path:
    """The folder for generated key files.

    Returns
    -------
    pathlib.Path
        ``$ROX_KEY_DIR`` if set and non-empty, else ``~/.config/rox/keys``.
    """
    env = os.environ.get(KEY_DIR_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "rox" / "keys"


def _key_file_name(engagement_dir: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", engagement_dir.name).strip("-.") or "engagement"
    path_hash = hashlib.sha256(str(engagement_dir).encode("utf-8")).hexdigest()[:6]
    return f"{slug}-{path_hash}{_KEY_FILE_SUFFIX}"


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _key_from_env(raw: str) -> PseudonymKey:
    value = raw.strip()
    source = f"environment variable {KEY_ENV_VAR}"
    if len(value) < MIN_KEY_CHARS:
        # Never echo the value: it is (a broken) secret.
        raise PrivacyError(
            f"The key in {KEY_ENV_VAR} is too short ({len(value)} characters; "
            f"at least {MIN_KEY_CHARS} are required).",
            file=source,
            rule=f"key length >= {MIN_KEY_CHARS}",
            fix=f"Set {KEY_ENV_VAR} to a long random value, e.g. the output of "
            '`python -c "import secrets; print(secrets.token_hex(32))"`, or unset it '
            "to use a key file outside the engagement folder.",
        )
    if (
        len(value) % 2 == 0
        and len(value) >= 2 * MIN_KEY_CHARS
        and re.fullmatch(r"[0-9A-Fa-f]+", value)
    ):
        key = bytes.fromhex(value)
    else:
        key = value.encode("utf-8")
    return PseudonymKey(key=key, source=source, fingerprint=_fingerprint(key))


def _read_key_file(path: Path) -> PseudonymKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PrivacyError(
            f"Cannot read the pseudonymisation key file: {exc.strerror or exc}.",
            file=str(path),
            rule="key file readable",
            fix="Check the file's owner and permissions (it should be readable by you, mode 0600).",
        ) from None
    created = ""
    body = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            m = re.match(r"#\s*created\s+(\S+)", line)
            if m:
                created = m.group(1)
        elif line:
            body.append(line)
    hex_key = "".join(body)
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_CHARS:
        raise PrivacyError(
            "The pseudonymisation key file is damaged (it does not hold a hex key of at "
            f"least {MIN_KEY_CHARS} bytes).",
            file=str(path),
            rule="key file format",
            fix="Restore the file from your backup.  Deleting it creates a NEW key and every "
            "pseudonym of this engagement will change.",
        )
    if not created:
        created = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).strftime("%Y-%m-%d")
    source = f"key file {path} (created {created})"
    return PseudonymKey(key=key, source=source, fingerprint=_fingerprint(key))


def _create_key_file(path: Path, engagement_dir: Path) -> None:
    key_dir = path.parent
    if not key_dir.exists():
        key_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(key_dir, 0o700)
    created = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    content = (
        "# ROX pseudonymisation key. Keep secret; do not copy into the engagement folder.\n"
        f"# engagement {engagement_dir}\n"
        f"# created {created}\n"
        f"{secrets.token_bytes(32).hex()}\n"
    )
    # O_EXCL: if two processes race, exactly one creates the key, the other reads it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_key(engagement_dir: Path, *, create: bool = True) -> PseudonymKey:
    """Load the pseudonymisation key of an engagement, creating it on first use.

    Lookup order:

    1. The environment variable ``ROX_PSEUDONYM_KEY``, if set.  It must hold at
       least 16 characters.  A value of 32+ hex digits is decoded as hex,
       anything else is used as UTF-8 text.
    2. A key file in ``$ROX_KEY_DIR`` (default ``~/.config/rox/keys``) named
       after the engagement folder plus a short hash of its absolute path, e.g.
       ``sample-1a2b3c.key``.  It is created once with
       ``secrets.token_bytes(32)``, file mode 0600, folder mode 0700, and reused
       afterwards.

    Parameters
    ----------
    engagement_dir : pathlib.Path
        The engagement folder.  Moving or renaming it changes the key file name;
        copy the key file (or set ``ROX_PSEUDONYM_KEY``) to keep pseudonyms stable.
    create : bool, default True
        Create the key file if it does not exist.  With ``False`` a missing key
        raises :class:`PrivacyError`.

    Returns
    -------
    PseudonymKey

    Raises
    ------
    PrivacyError
        If the environment key is shorter than 16 characters, the key folder lies
        inside the engagement folder, the key file is missing (``create=False``)
        or damaged.
    """
    env_value = os.environ.get(KEY_ENV_VAR)
    if env_value is not None:
        return _key_from_env(env_value)

    engagement = Path(engagement_dir).expanduser().resolve()
    key_dir = default_key_dir().resolve()
    if _is_within(key_dir, engagement):
        raise PrivacyError(
            "The key folder lies inside the engagement folder, so the key would be shared "
            "together with the pseudonymised data.",
            file=str(key_dir),
            column=KEY_DIR_ENV_VAR,
            rule="key stored outside the engagement folder",
            fix=f"Point {KEY_DIR_ENV_VAR} to a folder outside {engagement} (or unset it to use "
            "~/.config/rox/keys), or set ROX_PSEUDONYM_KEY.",
        )
    path = key_dir / _key_file_name(engagement)
    if not path.exists():
        if not create:
            raise PrivacyError(
                "No pseudonymisation key exists for this engagement.",
                file=str(path),
                rule="key present",
                fix=f"Copy the engagement's key file to {path} or set {KEY_ENV_VAR}.  Creating "
                "a new key (create=True) gives new pseudonyms that do not match earlier runs.",
            )
        try:
            _create_key_file(path, engagement)
        except FileExistsError:
            pass  # created concurrently by another process: read it
        except OSError as exc:
            raise PrivacyError(
                f"Cannot create the pseudonymisation key file: {exc.strerror or exc}.",
                file=str(path),
                rule="key file writable",
                fix=f"Make {key_dir} writable for you or set {KEY_DIR_ENV_VAR} to another "
                "folder outside the engagement.",
            ) from None
    return _read_key_file(path)


# ---------------------------------------------------------------------------
# Pseudonymisation
# ---------------------------------------------------------------------------


def _normalise_scalar(value: object) -> str | None:
    """The string that is hashed for ``value``; ``None`` for missing/blank."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | np.bool_):
        text = str(bool(value))
    elif isinstance(value, float | np.floating):
        if value != value:  # NaN
            return None
        f = float(value)
        text = str(int(f)) if f.is_integer() else str(f)
    elif isinstance(value, int | np.integer):
        text = str(int(value))
    else:
        try:
            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        text = str(value)
    text = text.strip()
    if not text:
        return None
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


def pseudonymise(values: pd.Series, key: PseudonymKey, *, prefix: str = "") -> pd.Series:
    """Replace values by keyed, stable pseudonym tokens.

    Each value is normalised to a string -- ``str(value)``, integral floats
    without the ``.0`` (``123``, ``123.0`` and ``"123"`` give the same token),
    surrounding white space stripped, Unicode in NFC form -- then hashed with
    HMAC-SHA256 under ``key``.  The token is ``prefix`` followed by the first 16
    hex characters of the digest.

    Parameters
    ----------
    values : pandas.Series
        Identifier values of any dtype.
    key : PseudonymKey
        The engagement key from :func:`load_or_create_key`.
    prefix : str, default ""
        Prepended to each token, e.g. ``"C-"`` for customers.

    Returns
    -------
    pandas.Series
        Dtype ``"str"``, same index and name as ``values``.  Missing values (and
        blank strings) stay missing.

    Notes
    -----
    The same value gives the same token under the same key; a different key
    gives unrelated tokens.  Hashing is done once per distinct value.
    """
    if not isinstance(key, PseudonymKey):
        raise TypeError("key must be a PseudonymKey (use load_or_create_key())")
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    if values.dtype == object:
        # Normalise first: factorize would merge values that compare equal (True == 1).
        normalised = np.array([_normalise_scalar(v) for v in values.to_numpy()], dtype=object)
        codes, uniques = pd.factorize(normalised)
        texts = list(uniques)
    elif isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values.str.strip())
        texts = [
            (t if t.isascii() else unicodedata.normalize("NFC", t)) if t else None
            for t in np.asarray(uniques, dtype=object)
        ]
    else:
        codes, uniques = pd.factorize(values)
        texts = [_normalise_scalar(v) for v in np.asarray(uniques, dtype=object)]

    mac = hmac.new(key.key, digestmod=hashlib.sha256)
    tokens: list[object] = []
    for text in texts:
        if text is None:
            tokens.append(None)
            continue
        h = mac.copy()
        h.update(text.encode("utf-8"))
        tokens.append(prefix + h.hexdigest()[:TOKEN_HEX_CHARS])
    tokens.append(None)  # slot for missing values (code -1)
    lookup = np.array(tokens, dtype=object)
    codes = np.where(codes < 0, len(tokens) - 1, codes)
    return pd.Series(lookup[codes], index=values.index, name=values.name, dtype="str")


# ---------------------------------------------------------------------------
# Identifier detection
# ---------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that, in front of "name", mean a *person's* name.
_PERSON_QUALIFIERS = _words(
    """
    first last full given family middle maiden nick display preferred sur fore christian
    guest customer client staff employee emp agent advisor adviser manager contact member
    user person patient passenger traveller traveler respondent reviewer author owner buyer
    holder cardholder recipient sender caller student driver supervisor colleague nominee
    nominator peer rep representative consultant worker associate applicant candidate
    visitor resident tenant booker attendee participant subscriber spouse child parent
    mother father emergency legal birth his her account operator cashier receptionist
    interviewer
    """
)

# Words that, in front of "name" (or an address/phone hint), mean a *thing*.
_NON_PERSON_QUALIFIERS = _words(
    """
    hotel unit team touchpoint tp store shop branch site property location venue restaurant
    outlet company organisation organization org business brand product item sku service
    plan package tier programme program campaign survey question questionnaire event channel
    journey stage step region area country city town state district department dept division
    role job position file sheet table column field variable metric kpi segment category
    group class type status room rate offer promotion course module project app device
    browser platform source medium vendor supplier chain resort airline airport route flight
    menu dish model version task process queue skill language currency period wave month day
    weekday tag label domain server dataset database schema index attribute touch
    office facility building floor merchant partner
    """
)

# Tokens that may follow an identifier hint and keep it an identifier ("email_address").
_ID_SUFFIXES = _words(
    """
    address addr number num no nr code line line1 line2 1 2 3 id raw hash hashed value full
    primary main home work private personal mobile cell contact
    """
)

# Extra non-English / concatenated hints for person names.
_EXTRA_NAME_WORDS = _words("vorname nachname nom prenom nombre apellido apellidos cognome nome")
_EXTRA_HINTS = ("zipcode", "postalcode", "post_code", "postal_code", "iban")

_NAME_WORDS = frozenset({"name", "names", *_EXTRA_NAME_WORDS})


def _snake(column: object) -> str:
    text = str(column)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^0-9a-z]+", "_", text.lower())
    return text.strip("_")


def _split_name_token(tok: str) -> list[str]:
    """Split concatenated forms like ``firstname`` into ``["first", "name"]``."""
    if tok.endswith("name") and len(tok) > 4 and tok not in _EXTRA_NAME_WORDS:
        head = tok[:-4]
        if len(head) >= 2:
            return [head, "name"]
    return [tok]


def _name_reason(snake: str, toks: list[str]) -> str | None:
    """Reason string if the column name denotes a person's name, else None."""
    expanded: list[str] = []
    for t in toks:
        expanded.extend(_split_name_token(t))
    if "surname" in expanded:
        return f"column name {snake!r} looks like a person's name"
    for pos, tok in enumerate(expanded):
        if tok not in _NAME_WORDS:
            continue
        around = expanded[:pos] + expanded[pos + 1 :]
        if not around or tok in _EXTRA_NAME_WORDS:
            return f"column name {snake!r} looks like a person's name"
        if any(t in _PERSON_QUALIFIERS for t in around):
            return f"column name {snake!r} looks like a person's name"
        if any(t in _NON_PERSON_QUALIFIERS for t in around):
            return None
        # Unknown qualifier ("passenger_nm_name"?): privacy first, flag for review.
        return (
            f"column name {snake!r} contains 'name' with an unknown qualifier; "
            "treated as a person's name"
        )
    return None


def _other_hints() -> list[tuple[str, ...]]:
    hints = []
    for hint in (*IDENTIFIER_NAME_HINTS, *_EXTRA_HINTS):
        toks = tuple(_snake(hint).split("_"))
        if any(t in _NAME_WORDS or t == "surname" or t.endswith("name") for t in toks):
            continue
        hints.append(toks)
    return hints


_OTHER_HINTS = _other_hints()
_SINGLE_HINTS = tuple(h[0] for h in _OTHER_HINTS if len(h) == 1)


def _hint_reason(snake: str, toks: list[str]) -> str | None:
    """Reason string if the column name holds a contact/ID hint ("email", "phone_number")."""
    n = len(toks)
    for hint in _OTHER_HINTS:
        L = len(hint)
        for start in range(n - L + 1):
            if tuple(toks[start : start + L]) != hint:
                continue
            before, after = toks[:start], toks[start + L :]
            if before and before[-1] in _NON_PERSON_QUALIFIERS:
                continue
            if all(t in _ID_SUFFIXES or t.isdigit() for t in after):
                return f"column name {snake!r} looks like a direct identifier ({'_'.join(hint)})"
    # Concatenated tokens: "emailaddress", "phonenumber", "guestemail".
    for tok in toks:
        for hint in _SINGLE_HINTS:
            if tok == hint or len(tok) <= len(hint):
                continue
            if tok.startswith(hint) and tok[len(hint) :] in _ID_SUFFIXES:
                return f"column name {snake!r} looks like a direct identifier ({hint})"
            if tok.endswith(hint) and tok[: -len(hint)] in _PERSON_QUALIFIERS:
                return f"column name {snake!r} looks like a direct identifier ({hint})"
    return None


_EMAIL_VALUE_RE = re.compile(r"[\w.%+'\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}")
_PHONE_CHARS_RE = re.compile(r"[+(]?\d[\d \u00a0.\-/()]*\d\)?")
# A date anywhere in a digit run (not part of a longer dotted/dashed number).
_DATE_IN_RE = re.compile(r"(?<![\d./\-])\d{1,4}([./\-])\d{1,2}\1\d{1,4}(?![./\-]?\d)")
_IPV4_RE = re.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}")
_DIGITS_RE = re.compile(r"\d+")


def _is_phone(text: str) -> bool:
    """Whether ``text`` (already trimmed to digits and phone punctuation) is phone-shaped.

    Rules: 7-15 digits; and either a leading ``+``, an international ``00``
    prefix, a national trunk ``0`` prefix (8+ digits in groups, 9+ unbroken), or
    -- without any prefix -- the North American shape ``555-123-4567``.
    Anything containing a date, IP addresses and plain numbers are never phones.
    """
    if text.startswith("(0)"):  # bracketed trunk prefix, "(0)7830-140-257"
        text = "0" + text[3:].lstrip(" \t\u00a0-.")
    groups = _DIGITS_RE.findall(text)
    digits = sum(len(g) for g in groups)
    if not 7 <= digits <= 15:
        return False
    if _DATE_IN_RE.search(text) or _IPV4_RE.fullmatch(text):
        return False
    body = text.lstrip("(")
    if text.startswith("+"):
        return digits >= 8
    if body.startswith("00"):
        return body[2:3] not in ("", "0") and digits >= 10
    if body.startswith("0"):
        if len(groups[0]) < 2 or digits > 12:
            return False
        return digits >= (9 if len(groups) == 1 else 8)
    # Without a prefix only the North American shape: (1) 555 123 4567.
    shape = tuple(len(g) for g in groups)
    return shape == (3, 3, 4) or (shape == (1, 3, 3, 4) and groups[0] == "1")


def _is_phone_value(text: str) -> bool:
    return bool(_PHONE_CHARS_RE.fullmatch(text)) and _is_phone(text)


def _value_reason(series: pd.Series, sample: int) -> str | None:
    dtype = series.dtype
    if (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    ):
        return None
    nonnull = series.dropna()
    if nonnull.empty:
        return None
    if len(nonnull) > sample:
        positions = np.unique(np.linspace(0, len(nonnull) - 1, sample).astype(np.int64))
        nonnull = nonnull.iloc[positions]
    texts = [str(v).strip() for v in nonnull.to_numpy()]
    texts = [t for t in texts if t]
    if not texts:
        return None
    n = len(texts)
    checks = (
        ("e-mail addresses", lambda t: _EMAIL_VALUE_RE.fullmatch(t) is not None),
        ("phone numbers", _is_phone_value),
        ("IP addresses", lambda t: _IPV4_RE.fullmatch(t) is not None),
    )
    for label, check in checks:
        hits = sum(1 for t in texts if check(t))
        if hits / n > 0.5:
            return f"{hits / n:.0%} of {n} sampled values look like {label}"
    return None


def detect_identifier_columns(df: pd.DataFrame, *, sample: int = 2000) -> dict[str, str]:
    """Find columns that look like direct identifiers.

    A column is flagged if

    * its name, normalised to snake_case (``"Guest Name"``, ``GuestName`` ->
      ``guest_name``), denotes a **person's** name (``name``, ``full_name``,
      ``first_name``, ``guest_name``, ``customer_name``, ``staff_name``,
      ``employee_name``, ``surname`` ...) -- but not the name of a thing
      (``hotel_name``, ``unit_name``, ``team_name``, ``touchpoint_name`` ...);
      a ``*_name`` column with an unknown qualifier is flagged for review;
    * its name holds another hint from
      :data:`rox_helpers.schemas.IDENTIFIER_NAME_HINTS` (``email``,
      ``phone_number``, ``home_address``, ``ip_address`` ...), optionally followed
      by ``address``/``number``/``code``-like words (``email_opt_in`` is not
      flagged); or
    * more than 50% of a sample of its non-null text values are e-mail-shaped,
      phone-shaped (7+ digits with a leading ``+``/``0`` or phone-style digit
      groups; IDs like ``G0000123``, dates and scores are not phones) or IPv4
      addresses.

    Boolean, numeric and datetime columns are never flagged by their values.

    Parameters
    ----------
    df : pandas.DataFrame
        The raw table.
    sample : int, default 2000
        Number of non-null values examined per column (evenly spread).

    Returns
    -------
    dict of str to str
        ``{column: reason}`` in column order.
    """
    found: dict[str, str] = {}
    for pos, column in enumerate(df.columns):
        series = df.iloc[:, pos]
        snake = _snake(column)
        toks = [t for t in snake.split("_") if t]
        is_bool = pd.api.types.is_bool_dtype(series.dtype)
        reason = None
        if toks and not is_bool:
            reason = _name_reason(snake, toks) or _hint_reason(snake, toks)
        if reason is None:
            reason = _value_reason(series, sample)
        if reason is not None:
            found[column] = reason
    return found


# ---------------------------------------------------------------------------
# Text scrubbing
# ---------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_TITLES = _words(
    """
    mr mrs ms miss mx dr prof sir madam herr frau mme mlle monsieur madame sr sra srta
    signor signora sig
    """
)
_NAME_SUFFIXES = _words("jr sr ii iii iv phd md esq mba bsc msc ba ma beng meng llm")
_PARTICLES = _words(
    """
    van von der den de del della di da du la le dos das bin ibn al el ter ten zu y
    """
)
_HYPHEN_INITIAL_RE = re.compile(r"[^\W\d_]{2,}-[^\W\d_]\.")
_TITLE_GAP_RE = re.compile(r"\.?[ \t\u00a0]+")


@functools.lru_cache(maxsize=1 << 17)
def _key(token: str) -> str:
    """Lookup key of a name token: case-folded, accents removed, ’ -> '."""
    if token.isascii():
        return token.lower()
    folded = token.casefold().replace("’", "'")
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class _Tokens:
    """Word tokens of one text, with positions, keys and capitalisation computed lazily."""

    __slots__ = ("_info", "_matches", "n", "text", "words")

    def __init__(self, text: str, words: list[str]) -> None:
        self.text = text
        self.words = words  # lookup keys of the _WORD_RE tokens, possessive 's still attached
        self.n = len(words)
        self._matches: list[re.Match[str]] | None = None
        self._info: list[tuple[int, int, str, bool] | None] = [None] * self.n

    def _get(self, j: int) -> tuple[int, int, str, bool]:
        info = self._info[j]
        if info is None:
            if self._matches is None:
                self._matches = list(_WORD_RE.finditer(self.text))
            m = self._matches[j]
            word, end = m.group(), m.end()
            if len(word) > 3 and word[-2:] in ("'s", "’s"):
                word, end = word[:-2], end - 2
            info = (m.start(), end, self.key(j), word[0].isupper())
            self._info[j] = info
        return info

    def start(self, j: int) -> int:
        return self._get(j)[0]

    def end(self, j: int) -> int:
        return self._get(j)[1]

    def key(self, j: int) -> str:
        w = self.words[j]
        return w[:-2] if len(w) > 3 and w[-2:] == "'s" else w

    def cap(self, j: int) -> bool:
        return self._get(j)[3]

    def initial(self, j: int) -> bool:
        """Token ``j`` ends in a capital initial: ``D`` in ``Hans D. Sauer``, ``Klaus-D``."""
        key = self.key(j)
        return self.cap(j) and (len(key) == 1 or key[-2:-1] == "-")

    def adjacent(self, j: int) -> bool:
        """Token ``j`` follows token ``j - 1`` separated by spaces only (same line).

        After an initial a dot is allowed too (``D. Sauer``).
        """
        gap = self.text[self.end(j - 1) : self.start(j)]
        if gap.startswith(".") and self.initial(j - 1):
            gap = gap[1:]
        return bool(gap) and gap.isspace() and "\n" not in gap

    def title_gap(self, i: int) -> bool:
        """Token ``i + 1`` follows the title at ``i`` after an optional dot and spaces."""
        return _TITLE_GAP_RE.fullmatch(self.text[self.end(i) : self.start(i + 1)]) is not None


class NameMatcher:
    """Find known person names in free text.

    Built once from the full names of customers and staff.  In a text it masks

    * a **known full name**, in any letter case (``Anna Schmidt``, ``anna
      schmidt``, also first + last without middle names);
    * a **capitalised run** of a known first name followed by a known last
      name, even if that combination belongs to no single person
      (``Anna Dubois``), including middle names and particles (``Jan van der
      Berg``);
    * a **title** (Mr, Mrs, Ms, Miss, Dr, Prof, Herr, Frau, Mme ...) followed by
      a capitalised known name (``Mr Dubois`` -> ``Mr [name]``).

    A first name or surname on its own is *not* masked, and nothing in lower
    case is masked unless it is a complete known full name: ``grace period``
    stays even if a ``Grace`` is in the index.  Accents and a possessive
    ``'s`` are ignored when matching (``Muller's`` matches ``Müller``).

    Parameters
    ----------
    names : iterable of str
        Full names such as ``"Anna Schmidt"`` or ``"Schmidt, Anna"``.  Missing
        values are skipped.

    Notes
    -----
    Matching uses token dictionaries (no per-name regular expressions), so
    building from tens of thousands of names and scanning tens of thousands of
    comments takes well under a second.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.first_names: set[str] = set()
        self.last_names: set[str] = set()
        self.full_names: set[tuple[str, ...]] = set()
        self._full_lengths: dict[str, tuple[int, ...]] = {}
        lengths: dict[str, set[int]] = {}
        if isinstance(names, str):
            names = [names]
        n_names = 0
        for raw in names:
            if raw is None or not isinstance(raw, str):
                try:
                    if raw is None or pd.isna(raw):
                        continue
                except (TypeError, ValueError):
                    pass
                raw = str(raw)
            text = raw.strip()
            if text.count(",") == 1:
                last, first = (p.strip() for p in text.split(","))
                text = f"{first} {last}"
            # Drop abbreviations, initials and degrees ("Dipl.-Ing.", "D.", "B.Sc.").
            # "Klaus-D." (abbreviated double first name) is kept as "Klaus-D".
            pieces = [
                p.rstrip(".") if _HYPHEN_INITIAL_RE.fullmatch(p) else p
                for p in text.split()
                if "." not in p or _HYPHEN_INITIAL_RE.fullmatch(p)
            ] or text.split()
            toks = [_key(t) for p in pieces for t in _WORD_RE.findall(p)]
            toks = [t for t in toks if len(t) > 1] or toks
            while toks and toks[0] in _TITLES:
                toks.pop(0)
            while len(toks) > 1 and toks[-1] in _NAME_SUFFIXES:
                toks.pop()
            if not toks:
                continue
            n_names += 1
            core = [t for t in toks if t not in _PARTICLES] or toks
            self._add_token(core[0], self.first_names)
            for t in core[1:]:
                self._add_token(t, self.last_names)
            if len(core) == 1:
                self._add_token(core[0], self.last_names)
            variants = {tuple(toks)}
            if len(core) > 2:
                variants.add((core[0], core[-1]))
            for v in variants:
                if len(v) >= 2:
                    self.full_names.add(v)
                    lengths.setdefault(v[0], set()).add(len(v))
        self._full_lengths = {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}
        self.known = self.first_names | self.last_names
        self.n_names = n_names
        # Every match starts with one of these keys: only their positions are examined.
        self._starters = frozenset(self.first_names | set(self._full_lengths) | _TITLES)

    @staticmethod
    def _add_token(token: str, target: set[str]) -> None:
        if len(token) < 2:
            return
        target.add(token)
        if "-" in token:
            target.update(p for p in token.split("-") if len(p) >= 2)

    def __repr__(self) -> str:  # never list the names themselves
        return (
            f"NameMatcher({self.n_names} names, {len(self.first_names)} first names, "
            f"{len(self.last_names)} last names)"
        )

    # -- matching -----------------------------------------------------------

    def _match_from(self, i: int, toks: _Tokens) -> int | None:
        """End index (exclusive) of the longest name starting at token ``i``."""
        n = toks.n
        best: int | None = None
        k0 = toks.key(i)
        for length in self._full_lengths.get(k0, ()):
            end = i + length
            if (
                end <= n
                and tuple(toks.key(j) for j in range(i, end)) in self.full_names
                and all(toks.adjacent(j) for j in range(i + 1, end))
            ):
                best = end
                break
        if toks.cap(i) and k0 in self.first_names:
            j = i + 1
            last_ok: int | None = None
            while j < n and toks.adjacent(j):
                kj = toks.key(j)
                if (kj in _PARTICLES and not (toks.cap(j) and kj in self.known)) or (
                    len(kj) == 1 and toks.initial(j)
                ):
                    j += 1
                    continue
                if toks.cap(j) and kj in self.known:
                    if kj in self.last_names:
                        last_ok = j
                    j += 1
                    continue
                break
            if last_ok is not None and (best is None or last_ok + 1 > best):
                best = last_ok + 1
        return best

    def _mask_one(self, text: str, token: str) -> tuple[str, int]:
        # Cheap pass: lower-case words and the positions where a name could start.
        if text.isascii():
            words = _WORD_RE.findall(text.lower())  # == _key() for ASCII
        else:
            words = [w.lower() if w.isascii() else _key(w) for w in _WORD_RE.findall(text)]
        starters = self._starters
        hits = [
            i
            for i, w in enumerate(words)
            if w in starters or (w[-2:] == "'s" and w[:-2] in starters)
        ]
        if not hits:
            return text, 0
        toks = _Tokens(text, words)
        known = self.known
        spans: list[tuple[int, int]] = []
        done = 0  # tokens before this index are already consumed by a match
        n = toks.n
        for i in hits:
            if i < done:
                continue
            k = toks.key(i)
            if k not in _TITLES and k not in self._full_lengths and not toks.cap(i):
                continue  # a lower-case first name starts nothing ("grace period")
            if k in _TITLES and i + 1 < n and toks.title_gap(i):
                j = i + 1
                while j + 1 < n and toks.key(j) in _PARTICLES and not toks.cap(j):
                    if not toks.adjacent(j + 1):
                        break
                    j += 1
                end = self._match_from(j, toks)
                if end is None and toks.cap(j) and toks.key(j) in known:
                    end = j + 1
                if end is not None:
                    spans.append((toks.start(i + 1), toks.end(end - 1)))
                    done = end
                    continue
            end = self._match_from(i, toks)
            if end is not None:
                spans.append((toks.start(i), toks.end(end - 1)))
                done = end
        if not spans:
            return text, 0
        out = []
        prev = 0
        for s, e in spans:
            out.append(text[prev:s])
            out.append(token)
            prev = e
        out.append(text[prev:])
        return "".join(out), len(spans)

    def mask(self, texts: pd.Series, token: str = "[name]") -> tuple[pd.Series, int]:
        """Replace known person names in ``texts`` by ``token``.

        Parameters
        ----------
        texts : pandas.Series
            Free text.  Missing values stay missing.
        token : str, default "[name]"
            The replacement.

        Returns
        -------
        masked : pandas.Series
            Dtype ``"str"``, same index and name.
        count : int
            Number of names masked (over all rows).
        """
        masked, total = _apply_per_unique(texts, lambda t: self._mask_one(t, token))
        return masked, int(total or 0)


# A date is tried first at each position so that its digits are never read as a phone.
_EMAIL_RE = re.compile(r"(?<![\w.%+\-])[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}(?![\w\-])")
_PHONE_SCAN_RE = re.compile(
    r"(?P<date>(?<![\w.\-/])\d{1,4}(?P<sep>[./\-])\d{1,2}(?P=sep)\d{1,4}(?![./\-]?\d))"
    r"|(?P<phone>(?<![\w@+.\-/€$£¥])[+(]?\d(?:[ \t\u00a0.\-/()]{0,3}\d){6,}\)?)"
)


# Quick test: seven digits close together (every phone candidate has them).
_PHONE_HINT_RE = re.compile(r"\d(?:[ \t\u00a0.\-/()]{0,3}\d){6}")


def _best_phone_span(cand: str) -> tuple[int, int] | None:
    """Longest sub-span of a digit run ``cand`` (on digit-group borders) that is a phone."""
    groups = [(m.start(), m.end()) for m in _DIGITS_RE.finditer(cand)]
    n = len(groups)
    for length in range(n, 0, -1):
        for i in range(n - length + 1):
            s = groups[i][0]
            e = groups[i + length - 1][1]
            if s > 0 and cand[s - 1] in "+(":
                s -= 1
            if cand[s:e].count("(") > cand[s:e].count(")") and cand[e : e + 1] == ")":
                e += 1
            if _is_phone(cand[s:e]):
                return s, e
    return None


def _mask_phones_in(cand: str) -> tuple[str, int]:
    span = _best_phone_span(cand)
    if span is None:
        return cand, 0
    s, e = span
    left, n_left = _mask_phones_in(cand[:s])
    right, n_right = _mask_phones_in(cand[e:])
    return f"{left}[phone]{right}", n_left + n_right + 1


def _scrub_one(text: str, matcher: NameMatcher | None) -> tuple[str, tuple[int, int, int]]:
    n_email = n_phone = n_name = 0
    if "@" in text:
        text, n_email = _EMAIL_RE.subn("[email]", text)
    counter = [0]

    def _phone(m: re.Match[str]) -> str:
        if m.group("date") is not None:
            return m.group()
        # Dates inside the digit run are barriers: never part of a phone number.
        cand = m.group()
        out, prev = [], 0
        for d in [*_DATE_IN_RE.finditer(cand), None]:
            stop = len(cand) if d is None else d.start()
            masked, k = _mask_phones_in(cand[prev:stop])
            counter[0] += k
            out.append(masked)
            if d is not None:
                out.append(d.group())
                prev = d.end()
        return "".join(out)

    if _PHONE_HINT_RE.search(text):
        text = _PHONE_SCAN_RE.sub(_phone, text)
    n_phone = counter[0]
    if matcher is not None:
        text, n_name = matcher._mask_one(text, "[name]")
    return text, (n_email, n_phone, n_name)


def _apply_per_unique(texts: pd.Series, func) -> tuple[pd.Series, object]:
    """Apply ``func(str) -> (str, counts)`` once per distinct non-missing value.

    Counts (an int or a tuple of ints) are summed over rows, i.e. weighted by
    how often each distinct value occurs.
    """
    if not isinstance(texts, pd.Series):
        texts = pd.Series(texts)
    codes, uniques = pd.factorize(texts)
    uniq = np.asarray(uniques, dtype=object)
    freq = np.bincount(codes[codes >= 0], minlength=len(uniq))
    out: list[object] = []
    total = None
    for value, weight in zip(uniq, freq, strict=True):
        new, counts = func(value if isinstance(value, str) else str(value))
        out.append(new)
        if isinstance(counts, tuple):
            scaled = tuple(int(c) * int(weight) for c in counts)
            total = (
                scaled
                if total is None
                else tuple(a + b for a, b in zip(total, scaled, strict=True))
            )
        else:
            total = (total or 0) + int(counts) * int(weight)
    out.append(None)
    lookup = np.array(out, dtype=object)
    codes = np.where(codes < 0, len(out) - 1, codes)
    result = pd.Series(lookup[codes], index=texts.index, name=texts.name, dtype="str")
    return result, total


@dataclass
class ScrubResult:
    """Result of :func:`scrub_text`.

    Attributes
    ----------
    text : pandas.Series
        The scrubbed text (dtype ``"str"``, same index; missing stays missing).
    counts : dict of str to int
        Number of masks applied per kind: ``{"email": n, "phone": n, "name": n}``.
    """

    text: pd.Series
    counts: dict[str, int]


def scrub_text(
    texts: pd.Series, *, names: NameMatcher | Iterable[str] | None = None
) -> ScrubResult:
    """Mask e-mail addresses, phone numbers and known person names in free text.

    * E-mail addresses become ``"[email]"``.
    * Phone numbers become ``"[phone]"``: international and national formats such
      as ``+44 7700 900123``, ``07700 900123``, ``(020) 7946 0018``,
      ``+49 30 123456``, ``0033 1 23 45 67 89``, ``555-123-4567``.  Ordinary
      numbers stay: prices (``€120``), dates (``12/03/2025``, ``2025-03-12``),
      room numbers (``room 214``), times (``10:30``), booking references
      without phone punctuation.
    * Known person names become ``"[name]"`` (see :class:`NameMatcher`).  Names
      that are in no table are not recognised.

    Parameters
    ----------
    texts : pandas.Series
        Free-text comments.  Non-string values are converted with ``str()``.
    names : NameMatcher or iterable of str, optional
        Known full names (build a :class:`NameMatcher` once and reuse it when
        scrubbing several columns).  ``None`` masks no names.

    Returns
    -------
    ScrubResult
        ``text`` (dtype ``"str"``, same index and name; missing stays missing)
        and ``counts``.
    """
    matcher: NameMatcher | None
    matcher = names if names is None or isinstance(names, NameMatcher) else NameMatcher(names)
    result, total = _apply_per_unique(texts, lambda t: _scrub_one(t, matcher))
    n_email, n_phone, n_name = total if total is not None else (0, 0, 0)
    return ScrubResult(text=result, counts={"email": n_email, "phone": n_phone, "name": n_name})
