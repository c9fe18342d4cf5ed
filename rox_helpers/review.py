"""Review and sign-off: nobody sends machine-written advice unread.

A consultant reviews a run's findings in ``<engagement>/review.yml``::

    findings:
      "03.1":                       # step 03, first finding (the id the report shows)
        headline: "Check-in speed matters most to business guests"
        so_what: "Fix the desk queue before the lobby refurbishment."
        was: "Check-in speed is the top driver"   # optional: the text this edit was made for
      "05.4":
        hide: true
        reason: "Client already knows; not part of this engagement."
      "04.2":
        comment: "Discussed with the HR director on 12 May."
    segments:                       # new names for behavioural segments (next `rox run`)
      1: "Business regulars"

The next render (``rox render <run>``, or the end of ``rox run``) applies it: edited texts
replace the machine's and are marked as edited, hidden findings leave the report (their
reasons go to the manifest), comments appear as the consultant's note. An edit whose ``was``
no longer matches the machine's text (the data changed since the edit was written) is not
applied and is reported, so an old rewrite never lands on a new finding.

A report is a DRAFT on every page until ``rox signoff <run> --by NAME`` records who approved
it, when, and the sha256 of what they approved (the executed notebooks, the findings and the
review) in the run's manifest. Changing any of these afterwards makes it a draft again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rox_helpers.artifacts import read_manifest
from rox_helpers.errors import ConfigError, RoxError

REVIEW_FILE = "review.yml"

__all__ = [
    "REVIEW_FILE",
    "FindingEdit",
    "Review",
    "ReviewedFindings",
    "apply_review",
    "approval_digest",
    "approval_state",
    "finding_id",
    "load_review",
    "sign_off",
]


class FindingEdit(BaseModel):
    """The consultant's changes to one finding."""

    model_config = ConfigDict(extra="forbid")

    headline: str | None = Field(default=None, min_length=1)
    so_what: str | None = None
    hide: bool = False
    reason: str | None = None
    comment: str | None = None
    was: str | None = Field(
        default=None, description="the machine's headline this edit was written for"
    )

    @model_validator(mode="after")
    def _hide_needs_reason(self) -> FindingEdit:
        if self.hide and not (self.reason and self.reason.strip()):
            raise ValueError("a hidden finding needs a reason (reason: ...)")
        return self


class Review(BaseModel):
    """``review.yml``: edits by finding id and segment names."""

    model_config = ConfigDict(extra="forbid")

    findings: dict[str, FindingEdit] = Field(default_factory=dict)
    segments: dict[int, str] = Field(default_factory=dict)


def finding_id(step: str, index: int) -> str:
    """The id a report shows beside a finding: ``<step>.<n>``, n counted from 1."""
    return f"{step}.{index + 1}"


def load_review(engagement: str | Path) -> Review:
    """Read ``<engagement>/review.yml`` (an empty review when there is none).

    Raises
    ------
    ConfigError
        The file is not valid YAML or breaks a rule; the message names the key and the fix.
    """
    path = Path(engagement) / REVIEW_FILE
    if not path.is_file():
        return Review()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path} is not valid YAML: {exc}",
            file=str(path),
            rule="YAML syntax",
            fix="Check the indentation and quote texts that contain ':' or '#'.",
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} must hold a mapping with 'findings' and/or 'segments'",
            file=str(path),
            rule="review.yml layout",
            fix="Start the file with 'findings:' (see rox_helpers/review.py for an example).",
        )
    raw = {**raw, "findings": {str(k): v for k, v in (raw.get("findings") or {}).items()}}
    try:
        return Review.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"{path}: {where}: {err['msg']}",
            file=str(path),
            column=where,
            rule="review.yml keys: headline, so_what, hide + reason, comment, was",
            fix='Correct the entry; ids look like "03.1" (step, then finding number).',
        ) from None


@dataclass
class ReviewedFindings:
    """Findings of every step after the review."""

    by_step: dict[str, list[dict[str, Any]]]
    hidden: list[dict[str, str]] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    not_applied: list[dict[str, str]] = field(default_factory=list)

    def log(self) -> dict[str, Any]:
        """For the manifest: what the review changed, hid and could not apply."""
        return {"edited": self.edited, "hidden": self.hidden, "not_applied": self.not_applied}


def apply_review(findings: dict[str, dict], review: Review) -> ReviewedFindings:
    """Apply ``review`` to findings as :func:`rox_helpers.artifacts.load_findings` returns them.

    Every finding gains ``id``, ``edited`` (the fields the consultant rewrote) and ``comment``;
    hidden findings are dropped and listed with their reasons. Ids that match no finding,
    and edits whose ``was`` differs from the machine's headline, are listed as not applied.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    res = ReviewedFindings(out)
    seen: set[str] = set()
    for step, payload in sorted(findings.items()):
        kept = []
        for i, f in enumerate(payload.get("findings", [])):
            fid = finding_id(step, i)
            g = {**f, "id": fid, "edited": [], "comment": ""}
            edit = review.findings.get(fid)
            if edit is not None:
                seen.add(fid)
                if edit.was is not None and edit.was.strip() != str(f.get("headline", "")).strip():
                    res.not_applied.append(
                        {
                            "id": fid,
                            "why": "the finding changed since the edit was written "
                            f"(now: {str(f.get('headline', ''))[:120]!r})",
                        }
                    )
                    kept.append(g)
                    continue
                if edit.hide:
                    res.hidden.append({"id": fid, "reason": str(edit.reason)})
                    continue
                for key in ("headline", "so_what"):
                    new = getattr(edit, key)
                    if new is not None and new != f.get(key):
                        g[key] = new
                        g["edited"].append(key)
                g["comment"] = edit.comment or ""
                if g["edited"] or g["comment"]:
                    res.edited.append(fid)
            kept.append(g)
        out[step] = kept
    for fid in sorted(set(review.findings) - seen):
        res.not_applied.append({"id": fid, "why": "no finding has this id in the run"})
    return res


# ---------------------------------------------------------------------------- sign-off
def approval_digest(run_dir: str | Path, engagement: str | Path) -> str:
    """sha256 of what a sign-off approves: the executed notebooks, the findings, the
    figures of the per-unit reports made so far (``per_<column>/_figures``: figures, not
    the re-rendered HTML, so re-rendering them keeps an approval) and the review (file names
    and contents, in a fixed order). Unit reports rendered after a sign-off change the
    digest: the run is a draft again until someone approves them too."""
    run_dir = Path(run_dir)
    h = hashlib.sha256()
    files = (
        sorted((run_dir / "notebooks").glob("*.ipynb"))
        + sorted((run_dir / "artifacts" / "findings").glob("*.json"))
        + sorted(p for p in run_dir.glob("per_*/_figures/**/*") if p.is_file())
    )
    for p in files:
        h.update(str(p.relative_to(run_dir)).encode() + b"\0" + p.read_bytes() + b"\0")
    review = Path(engagement) / REVIEW_FILE
    h.update(b"review\0" + (review.read_bytes() if review.is_file() else b"(none)"))
    return h.hexdigest()


def approval_state(manifest: dict[str, Any], digest: str) -> dict[str, Any]:
    """``{"draft": bool, "text": str}`` for the report's marking."""
    so = manifest.get("signoff")
    if not so:
        return {"draft": True, "text": "DRAFT - not yet approved"}
    if so.get("digest") != digest:
        return {
            "draft": True,
            "text": f"DRAFT - changed after approval by {so.get('by')} on {so.get('at', '')[:10]}",
        }
    return {"draft": False, "text": f"Approved by {so.get('by')} on {so.get('at', '')[:10]}"}


def sign_off(run_dir: str | Path, engagement: str | Path, by: str) -> dict[str, Any]:
    """Record the approval of a run in its manifest; returns the record."""
    by = (by or "").strip()
    if not by:
        raise RoxError(
            "a sign-off needs the approver's name",
            rule="--by NAME",
            fix='Run `rox signoff <run> --by "Jane Partner"`.',
        )
    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    manifest = read_manifest(run_dir, rule="sign off a run")
    if manifest.get("status") != "ok":
        raise RoxError(
            f"run {run_dir.name} did not finish cleanly (status {manifest.get('status')!r})",
            file=str(manifest_path),
            rule="only a complete run can be approved",
            fix="Fix the failed steps (`rox run --resume`), review, then sign off.",
        )
    record = {
        "by": by,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "digest": approval_digest(run_dir, engagement),
    }
    manifest["signoff"] = record
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(manifest_path)
    return record
