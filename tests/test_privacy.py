"""Tests for rox_helpers.privacy: keys, pseudonyms, identifier detection, scrubbing."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rox_helpers.errors import PrivacyError
from rox_helpers.privacy import (
    KEY_DIR_ENV_VAR,
    KEY_ENV_VAR,
    NameMatcher,
    PseudonymKey,
    ScrubResult,
    detect_identifier_columns,
    load_or_create_key,
    pseudonymise,
    scrub_text,
)

POSIX = sys.platform != "win32"

KEY_A = PseudonymKey.from_bytes(b"a" * 32, "test key A")
KEY_B = PseudonymKey.from_bytes(b"b" * 32, "test key B")


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


@pytest.fixture
def key_env(tmp_path, monkeypatch):
    """An engagement folder and a key folder under tmp_path; HOME redirected too."""
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    key_dir = tmp_path / "keys"
    monkeypatch.setenv(KEY_DIR_ENV_VAR, str(key_dir))
    engagement = tmp_path / "engagements" / "sample"
    engagement.mkdir(parents=True)
    return engagement, key_dir


def test_key_file_created_once_with_private_modes_and_reused(key_env):
    engagement, key_dir = key_env
    first = load_or_create_key(engagement)
    files = list(key_dir.iterdir())
    assert len(files) == 1
    key_file = files[0]
    assert key_file.name.startswith("sample-") and key_file.suffix == ".key"
    assert len(first.key) == 32
    assert first.fingerprint == hashlib.sha256(first.key).hexdigest()[:8]
    assert str(key_file) in first.source and "created" in first.source
    if POSIX:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    content = key_file.read_bytes()

    second = load_or_create_key(engagement)
    third = load_or_create_key(engagement, create=False)
    assert second.key == first.key == third.key
    assert key_file.read_bytes() == content
    assert list(key_dir.iterdir()) == [key_file]


def test_key_file_lies_outside_engagement_and_differs_per_engagement_path(key_env, tmp_path):
    engagement, key_dir = key_env
    other = tmp_path / "elsewhere" / "sample"  # same folder name, different path
    other.mkdir(parents=True)
    k1 = load_or_create_key(engagement)
    k2 = load_or_create_key(other)
    assert k1.key != k2.key
    assert len(list(key_dir.iterdir())) == 2
    assert not any(p.suffix == ".key" for p in engagement.rglob("*"))


def test_default_key_dir_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.delenv(KEY_DIR_ENV_VAR, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    engagement = tmp_path / "eng"
    engagement.mkdir()
    key = load_or_create_key(engagement)
    files = list((home / ".config" / "rox" / "keys").glob("eng-*.key"))
    assert len(files) == 1
    assert str(files[0]) in key.source


def test_env_var_wins_over_key_file(key_env, monkeypatch):
    engagement, _ = key_env
    load_or_create_key(engagement)  # a key file exists ...
    monkeypatch.setenv(KEY_ENV_VAR, "correct horse battery staple")
    key = load_or_create_key(engagement)  # ... but the variable wins
    assert key.key == b"correct horse battery staple"
    assert KEY_ENV_VAR in key.source
    assert "correct horse" not in key.source


def test_env_var_hex_is_decoded(key_env, monkeypatch):
    engagement, _ = key_env
    monkeypatch.setenv(KEY_ENV_VAR, "00ff" * 16)
    assert load_or_create_key(engagement).key == bytes.fromhex("00ff" * 16)


def test_env_var_without_key_dir_creates_nothing(key_env, monkeypatch):
    engagement, key_dir = key_env
    monkeypatch.setenv(KEY_ENV_VAR, "x" * 20)
    load_or_create_key(engagement)
    assert not key_dir.exists()


@pytest.mark.parametrize("short", ["", "   ", "tooShort123"])
def test_short_env_key_rejected_without_echoing_it(key_env, monkeypatch, short):
    engagement, _ = key_env
    monkeypatch.setenv(KEY_ENV_VAR, short)
    with pytest.raises(PrivacyError) as info:
        load_or_create_key(engagement)
    err = info.value
    assert err.fix and KEY_ENV_VAR in err.fix
    if short.strip():
        assert short not in str(err)


@pytest.mark.parametrize("inside", [".", "keys", "sub/deeper"])
def test_key_dir_inside_engagement_rejected(key_env, monkeypatch, inside):
    engagement, _ = key_env
    monkeypatch.setenv(KEY_DIR_ENV_VAR, str(engagement / inside))
    with pytest.raises(PrivacyError) as info:
        load_or_create_key(engagement)
    assert info.value.fix and KEY_DIR_ENV_VAR in info.value.fix
    assert not any(p.suffix == ".key" for p in engagement.rglob("*"))


def test_missing_key_with_create_false(key_env):
    engagement, key_dir = key_env
    with pytest.raises(PrivacyError) as info:
        load_or_create_key(engagement, create=False)
    err = info.value
    assert err.file and Path(err.file).parent == key_dir.resolve()
    assert err.file.endswith(".key") and "sample-" in err.file
    assert err.fix
    assert not key_dir.exists() or not list(key_dir.iterdir())


def test_damaged_key_file_is_an_error_and_not_overwritten(key_env):
    engagement, key_dir = key_env
    load_or_create_key(engagement)
    (key_file,) = key_dir.iterdir()
    key_file.write_text("not a key\n")
    with pytest.raises(PrivacyError) as info:
        load_or_create_key(engagement)
    assert info.value.file == str(key_file)
    assert key_file.read_text() == "not a key\n"


def test_repr_and_str_do_not_leak_the_key(key_env, monkeypatch):
    engagement, _ = key_env
    for key in (load_or_create_key(engagement), KEY_A):
        for text in (repr(key), str(key), f"{key}", repr([key])):
            assert key.key.hex() not in text
            assert repr(key.key) not in text
            assert key.fingerprint in text
    monkeypatch.setenv(KEY_ENV_VAR, "my-secret-passphrase-123")
    env_key = load_or_create_key(engagement)
    assert "my-secret-passphrase-123" not in repr(env_key) + env_key.source


def test_from_bytes_rejects_short_keys():
    with pytest.raises(PrivacyError):
        PseudonymKey.from_bytes(b"short")


# ---------------------------------------------------------------------------
# Pseudonymisation
# ---------------------------------------------------------------------------


def test_pseudonymise_known_answer_and_format():
    out = pseudonymise(pd.Series([" AbC\t", "abc"]), KEY_A, prefix="C-")
    expected = hmac.new(b"a" * 32, b"AbC", hashlib.sha256).hexdigest()[:16]
    assert out.iloc[0] == "C-" + expected  # HMAC-SHA256 of the stripped value, 16 hex
    assert out.iloc[1] != out.iloc[0]  # case is kept
    assert out.dtype == "str"


def test_pseudonymise_deterministic_and_key_sensitive():
    s = pd.Series(["G001", "G002", "G001", "  G002 "], index=[10, 11, 12, 13], name="guest_id")
    a1 = pseudonymise(s, KEY_A)
    a2 = pseudonymise(s, KEY_A)
    b = pseudonymise(s, KEY_B)
    pd.testing.assert_series_equal(a1, a2)
    assert a1.index.tolist() == [10, 11, 12, 13] and a1.name == "guest_id"
    assert a1.iloc[0] == a1.iloc[2] and a1.iloc[1] == a1.iloc[3]
    assert a1.iloc[0] != a1.iloc[1]
    assert set(a1).isdisjoint(set(b))
    assert all(len(t) == 16 and int(t, 16) >= 0 for t in a1)


def test_pseudonymise_missing_stays_missing():
    s = pd.Series(["x1", None, np.nan, pd.NA, "", "  "], dtype=object)
    out = pseudonymise(s, KEY_A)
    assert out.dtype == "str"
    assert out.notna().tolist() == [True, False, False, False, False, False]
    floats = pseudonymise(pd.Series([1.0, np.nan]), KEY_A)
    assert floats.isna().tolist() == [False, True]
    strings = pseudonymise(pd.Series(["a", None], dtype="str"), KEY_A)
    assert strings.isna().tolist() == [False, True]


def test_pseudonymise_numbers_and_strings_hash_the_same():
    as_obj = pseudonymise(
        pd.Series([123, "123", 123.0, " 123 ", np.int64(123)], dtype=object), KEY_A
    )
    assert as_obj.nunique() == 1
    as_int = pseudonymise(pd.Series([123]), KEY_A)
    as_float = pseudonymise(pd.Series([123.0, np.nan]), KEY_A)
    as_str = pseudonymise(pd.Series(["123"], dtype="str"), KEY_A)
    assert as_int.iloc[0] == as_float.iloc[0] == as_str.iloc[0] == as_obj.iloc[0]
    assert pseudonymise(pd.Series([123.5]), KEY_A).iloc[0] != as_int.iloc[0]
    # object columns must not merge True with 1 (pandas would if we factorized first)
    mixed = pseudonymise(pd.Series([True, 1], dtype=object), KEY_A)
    assert mixed.iloc[0] != mixed.iloc[1]


def test_pseudonymise_unicode_forms_are_unified():
    composed = unicodedata.normalize("NFC", "Müller")
    decomposed = unicodedata.normalize("NFD", "Müller")
    assert composed != decomposed
    out = pseudonymise(pd.Series([composed, decomposed]), KEY_A)
    assert out.iloc[0] == out.iloc[1]


_clean_text = (
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
    .map(lambda s: unicodedata.normalize("NFC", s).strip())
    .filter(bool)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_clean_text, min_size=1, max_size=40, unique=True), st.sampled_from(["", "C-"]))
def test_pseudonymise_properties(values, prefix):
    s = pd.Series([*values, None], dtype=object)
    out = pseudonymise(s, KEY_A, prefix=prefix)
    again = pseudonymise(s, KEY_A, prefix=prefix)
    other = pseudonymise(s, KEY_B, prefix=prefix)
    pd.testing.assert_series_equal(out, again)  # stable across calls
    tokens = out.iloc[:-1].tolist()
    assert len(set(tokens)) == len(values)  # injective on distinct values
    assert pd.isna(out.iloc[-1])  # NA preserved
    assert all(t.startswith(prefix) and len(t) == len(prefix) + 16 for t in tokens)
    assert all(a != b for a, b in zip(tokens, other.iloc[:-1], strict=True))
    for value, token in zip(values, tokens, strict=True):
        # A token is 16 random-looking hex digits: a short all-hex input can occur in it by
        # pure chance (~1 in 5000 for 4 hex chars), so the check covers inputs that cannot
        # collide by chance (non-hex characters, or 8+ characters).
        hexish = all(c in "0123456789abcdef" for c in value)
        if len(value) > 3 and (not hexish or len(value) >= 8):
            assert value not in token


# ---------------------------------------------------------------------------
# Identifier detection
# ---------------------------------------------------------------------------


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    phones = ["+44 7700 900123", "07700 900456", "(020) 7946 0018", "+49 30 123456", "555-123-4567"]
    return pd.DataFrame(
        {
            "full_name": [f"Person {i}" for i in range(n)],
            "email": [f"p{i}@example.com" for i in range(n)],
            "phone": [phones[i % len(phones)] for i in range(n)],
            "hotel_name": [f"Hotel {i % 3}" for i in range(n)],
            "guest_id": [f"G{i:07d}" for i in range(n)],
            "q_recommend": rng.integers(0, 11, n),
            "visit_date": pd.date_range("2025-01-01", periods=n, freq="D"),
            "visit_date_text": [f"2025-03-{1 + i % 28:02d}" for i in range(n)],
            "stay_date_eu": [f"{1 + i % 28:02d}/03/2025" for i in range(n)],
        }
    )


def test_detect_flags_exactly_name_email_phone():
    found = detect_identifier_columns(_frame())
    assert set(found) == {"full_name", "email", "phone"}
    assert all(isinstance(r, str) and r for r in found.values())


def test_detect_by_values_when_names_are_uninformative():
    df = _frame().rename(columns={"email": "contact_1", "phone": "c2", "full_name": "x"})
    df["x"] = "Alex"  # an uninformative name column without a name hint stays unflagged
    found = detect_identifier_columns(df)
    assert set(found) == {"contact_1", "c2"}
    assert "e-mail" in found["contact_1"] and "phone" in found["c2"]


@pytest.mark.parametrize(
    "column",
    [
        "name",
        "full_name",
        "first_name",
        "last_name",
        "surname",
        "guest_name",
        "customer_name",
        "staff_name",
        "employee_name",
        "FirstName",
        "Guest Name",
        "fullname",
        "E-Mail",
        "email_address",
        "phone_number",
        "mobile",
        "home_address",
        "ip_address",
        "postcode",
    ],
)
def test_detect_person_column_names(column):
    df = pd.DataFrame({column: ["xyz", "abc", "def"]})
    assert column in detect_identifier_columns(df)


@pytest.mark.parametrize(
    "column",
    [
        "hotel_name",
        "unit_name",
        "team_name",
        "touchpoint_name",
        "store_name",
        "HotelName",
        "hotel",
        "mobile_app_user",
        "email_opt_in",
        "q_recommend",
        "guest_id",
    ],
)
def test_detect_ignores_non_person_column_names(column):
    df = pd.DataFrame({column: ["xyz", "abc", "def"]})
    assert detect_identifier_columns(df) == {}


@pytest.mark.parametrize(
    "values",
    [
        [f"G{i:07d}" for i in range(50)],  # IDs
        [f"{i:07d}" for i in range(50)],  # zero-padded IDs
        [str(1_000_000 + i) for i in range(50)],  # long numbers
        [f"{1234567 + i}.89" for i in range(50)],  # decimals
        [f"2025-03-{1 + i % 28:02d} 10:30:00" for i in range(50)],  # timestamps
        [f"0{1 + i % 9}.03.2025" for i in range(50)],  # dates with a leading 0
        [f"0{1 + i % 9}/03/2025" for i in range(50)],
        [str(i % 11) for i in range(50)],  # scores as text
        [f"€{100 + i}" for i in range(50)],  # prices
    ],
)
def test_detect_does_not_flag_non_identifier_values(values):
    assert detect_identifier_columns(pd.DataFrame({"v": values})) == {}


def test_detect_threshold_is_more_than_half():
    half = ["a@b.com", "nope"] * 10
    assert detect_identifier_columns(pd.DataFrame({"v": half})) == {}
    most = ["a@b.com", "a@b.com", "nope"] * 10
    assert "v" in detect_identifier_columns(pd.DataFrame({"v": most}))


def test_detect_samples_large_columns():
    values = ["a@b.com"] * 10_000 + ["x"] * 1_000
    df = pd.DataFrame({"v": values})
    assert "v" in detect_identifier_columns(df, sample=100)


# ---------------------------------------------------------------------------
# Scrubbing
# ---------------------------------------------------------------------------

KNOWN = ["Anna Schmidt", "Pierre Dubois", "Grace Hopper", "Jan van der Berg", "Hans Müller"]

PHONES = [
    "+44 7700 900123",
    "07700 900123",
    "(020) 7946 0018",
    "+49 30 123456",
    "0033 1 23 45 67 89",
    "555-123-4567",
    "+447700900123",
    "01.23.45.67.89",
    "030/1234567",
    "(0)7830-140-257",  # bracketed trunk prefix (found in the sample's planted comments)
    "+44 (0)20 7946 0018",
]


@pytest.mark.parametrize("phone", PHONES)
def test_scrub_masks_phone_formats(phone):
    res = scrub_text(pd.Series([f"Please call {phone} after 10:30, thanks."]))
    assert res.text.iloc[0] == "Please call [phone] after 10:30, thanks."
    assert res.counts == {"email": 0, "phone": 1, "name": 0}


@pytest.mark.parametrize("email", ["anna.schmidt@example.com", "a.b+tag@mail.co.uk", "X_Y@host.de"])
def test_scrub_masks_emails(email):
    res = scrub_text(pd.Series([f"Write to {email}."]))
    assert res.text.iloc[0] == "Write to [email]."
    assert res.counts["email"] == 1 and res.counts["phone"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Paid €120 for two nights.",
        "We stayed from 12/03/2025 to 2025-03-15 (14.03.2025 was best).",
        "Our room 214 was next to room 215.",
        "Breakfast 07:00-10:30, checkout 11:00.",
        "Total £1,250.00 incl. 3 nights; booking ref 12345678; rated 4.5/5.",
        "In 214 12/03/2025 12/03/2025 room 10:30 12/03/2025 10:30",
        "There was a grace period for late checkout.",
        "Rooms 214 215 216 were noisy; in 2019 2020 2021 too.",
    ],
)
def test_scrub_leaves_ordinary_text_alone(text):
    res = scrub_text(pd.Series([text]), names=KNOWN)
    assert res.text.iloc[0] == text
    assert res.counts == {"email": 0, "phone": 0, "name": 0}


def test_scrub_masks_known_names():
    texts = pd.Series(
        [
            "Anna Schmidt at reception was lovely.",
            "Mr Dubois fixed the shower. Thank you Mrs. Schmidt!",
            "anna schmidt again",
            "Dr. Pierre Dubois and Jan van der Berg came.",
            "Anna Dubois helped, and Herr Muller's team too.",
        ]
    )
    res = scrub_text(texts, names=KNOWN)
    assert res.text.tolist() == [
        "[name] at reception was lovely.",
        "Mr [name] fixed the shower. Thank you Mrs. [name]!",
        "[name] again",
        "Dr. [name] and [name] came.",
        "[name] helped, and Herr [name]'s team too.",
    ]
    assert res.counts["name"] == 8


def test_scrub_only_promises_known_names_and_keeps_single_words():
    texts = pd.Series(
        [
            "John Doe was rude.",  # not in the index
            "Grace at the bar was kind, grace period ok.",  # a single first name stays
            "The Schmidt family suite.",  # a single surname without a title stays
        ]
    )
    res = scrub_text(texts, names=KNOWN)
    assert res.text.tolist() == texts.tolist()
    assert res.counts["name"] == 0


def test_scrub_all_kinds_together_counts_and_missing():
    texts = pd.Series(
        [
            "Anna Schmidt (anna@example.com, +44 7700 900123) paid €120.",
            None,
            "",
            "Anna Schmidt (anna@example.com, +44 7700 900123) paid €120.",
        ],
        index=[5, 6, 7, 8],
        name="comment",
    )
    res = scrub_text(texts, names=NameMatcher(KNOWN))
    assert isinstance(res, ScrubResult)
    assert res.text.dtype == "str"
    assert res.text.index.tolist() == [5, 6, 7, 8] and res.text.name == "comment"
    assert res.text.iloc[0] == "[name] ([email], [phone]) paid €120."
    assert pd.isna(res.text.iloc[1])
    assert res.text.iloc[2] == ""
    assert res.text.iloc[3] == res.text.iloc[0]
    assert res.counts == {"email": 2, "phone": 2, "name": 2}


def test_cross_pairs_need_capitals():
    known = ["Grace Hopper", "Mark Long"]
    texts = pd.Series(["the grace long after", "Grace long queues", "Grace Long called"])
    res = scrub_text(texts, names=known)
    assert res.text.tolist() == ["the grace long after", "Grace long queues", "[name] called"]


def test_index_names_with_titles_degrees_and_initials():
    known = ["Prof. Dr. Hans D. Sauer B.Sc.", "Klaus-D. Krebs", "Dipl.-Ing. Benita auch Schlauchin"]
    texts = pd.Series(
        [
            "Hans Sauer and Hans D. Sauer",
            "Klaus-D. Krebs called",
            "benita auch schlauchin wrote",
            "Prof. Sauer was there",
        ]
    )
    res = scrub_text(texts, names=known)
    assert res.text.tolist() == [
        "[name] and [name]",
        "[name] called",
        "[name] wrote",
        "Prof. [name] was there",
    ]


def test_scrub_without_names_masks_no_names():
    res = scrub_text(pd.Series(["Anna Schmidt called."]))
    assert res.text.iloc[0] == "Anna Schmidt called."


def test_name_matcher_mask_and_repr():
    matcher = NameMatcher(["Schmidt, Anna", None, "Mrs Grace Hopper PhD"])
    out, n = matcher.mask(pd.Series(["Anna Schmidt and Grace Hopper", None]), token="<n>")
    assert out.iloc[0] == "<n> and <n>"
    assert pd.isna(out.iloc[1])
    assert n == 2
    assert "Schmidt" not in repr(matcher) and "Hopper" not in repr(matcher)


def test_outputs_do_not_contain_planted_identifiers():
    planted = {
        "Anna Schmidt": "name",
        "anna.schmidt@example.com": "email",
        "+44 7700 900123": "phone",
        "Mr Dubois": "name",
    }
    text = "; ".join(f"{k} said hi" for k in planted)
    res = scrub_text(pd.Series([text] * 3), names=KNOWN)
    for needle in ("Anna", "Schmidt", "anna.schmidt", "7700", "900123", "Dubois"):
        assert needle not in res.text.iloc[0]


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_key_file_not_world_readable_even_with_permissive_umask(key_env):
    engagement, key_dir = key_env
    old = os.umask(0)
    try:
        load_or_create_key(engagement)
    finally:
        os.umask(old)
    (key_file,) = key_dir.iterdir()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
