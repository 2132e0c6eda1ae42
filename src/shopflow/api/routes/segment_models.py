"""Request and response bodies of /api/v1/segments (their OpenAPI schemas).

A rule travels as written: the schema is the rule language's (domain/segments/rules.py), but the
body keeps the data as sent, so the segments use case checks it and names the path of every bad
node (`rule.all[2].where.metric: unknown metric`) instead of the web framework's union errors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, StrictBool, StrictInt, StrictStr

from shopflow.domain.segments import rules
from shopflow.segments import install, manage

_FORBID = ConfigDict(extra="forbid")
_RULE_DOC = (
    "The rule: a tree of all / any / not over conditions (docs/segments.md), as JSON, "
    "or the same as JSON or YAML text."
)
# The data as sent, documented with the rule language's schema.
Rule = SkipValidation[rules.Condition | str]


class CreateSegment(BaseModel):
    model_config = _FORBID

    key: StrictStr = Field(description="Letters, digits and _ . : - (at most 100); unique in the workspace")
    name: StrictStr = Field(description="A name for people (at most 200 characters)")
    rule: Rule = Field(description=_RULE_DOC)
    status: Literal["draft", "live"] = Field("live", description="live: kept current from now on")
    fire_on_backfill: StrictBool = Field(
        False, description="Emit Segment Entered for the members the backfill finds (flows trigger on it)"
    )


class EditSegment(BaseModel):
    """PATCH: any of the fields; a changed rule makes a new version, backfilled again."""

    model_config = _FORBID

    name: StrictStr | None = None
    rule: Rule | None = Field(None, description=_RULE_DOC)
    fire_on_backfill: StrictBool | None = None


class ReplaceSegment(BaseModel):
    """PUT: the name and the rule."""

    model_config = _FORBID

    name: StrictStr
    rule: Rule = Field(description=_RULE_DOC)
    fire_on_backfill: StrictBool | None = None


class CheckRule(BaseModel):
    model_config = _FORBID

    rule: Rule = Field(description=_RULE_DOC)
    key: StrictStr | None = Field(
        None, description="The segment this rule is for, when editing one (a segment cannot include itself)"
    )


class PreviewRule(CheckRule):
    sample: StrictInt = Field(10, ge=0, le=manage.MAX_SAMPLE, description="How many members to show")


class InstallSegments(BaseModel):
    model_config = _FORBID

    keys: list[StrictStr] | None = Field(
        None, max_length=100, description="Built-in segment keys (GET /library)"
    )
    all: StrictBool = Field(False, description="Install every built-in segment")
    live: StrictBool = Field(False, description="Make them live at once (default: drafts)")


class Backfill(BaseModel):
    status: str = Field(description="pending | running | done")
    done: int = Field(description="Profiles evaluated so far")
    total: int | None = Field(description="Profiles to evaluate, once known")
    started_at: datetime | None
    finished_at: datetime | None


class SegmentSummary(BaseModel):
    id: int
    key: str
    name: str
    status: str = Field(description="draft | live | paused | archived")
    version: int
    members: int = Field(description="Current size")
    includes: list[str] = Field(description="Keys of the segments the rule includes")
    fire_on_backfill: bool
    backfill: Backfill
    created_at: datetime
    updated_at: datetime


class SegmentDetail(SegmentSummary):
    rule: dict[str, Any] = Field(description="The current version's rule, defaults written out")


class EditedSegment(SegmentDetail):
    new_version: bool = Field(description="The rule changed: a new version, backfilled again")


class SegmentList(BaseModel):
    segments: list[SegmentSummary]


class StatusChanged(BaseModel):
    segment: SegmentSummary
    old: str
    new: str


class Checked(BaseModel):
    valid: Literal[True] = True
    rule: dict[str, Any] = Field(description="The rule as it would be stored")
    conditions: int = Field(description="Nodes of the rule tree")
    includes: list[str]
    warnings: list[str] = Field(description="What does not refuse the rule but may surprise")


class Member(BaseModel):
    profile_id: int
    email: str | None
    phone: str | None
    external_id: str | None
    first_name: str | None
    last_name: str | None
    entered_at: datetime | None = Field(None, description="When the profile entered (members only)")


class Previewed(Checked):
    count: int = Field(description="Profiles the rule holds for now")
    sample: list[Member] = Field(description="The first members by profile id")


class MemberPage(BaseModel):
    members: list[Member]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null on the last")


class Size(BaseModel):
    at: datetime
    members: int


class Sizes(BaseModel):
    key: str
    sizes: list[Size]


class LibraryEntry(BaseModel):
    key: str
    name: str
    description: str
    rule: dict[str, Any]


class Library(BaseModel):
    segments: list[LibraryEntry]


class InstalledEntry(BaseModel):
    key: str
    segment_id: int
    status: str
    version: int
    created: bool = Field(description="False: the workspace had this key already; left as it is")


class InstalledList(BaseModel):
    installed: list[InstalledEntry]


class FieldError(BaseModel):
    field: str = Field(description="The path of the bad node or field: `rule.all[2].where.metric`")
    error: str


class Error(BaseModel):
    error: str = Field(description="Every problem, each naming its path: `rule.all[2].where.metric: ...`")
    errors: list[FieldError] | None = None


summary = manage.summary


def detail(s: manage.Segment) -> dict[str, Any]:
    return {**summary(s), "rule": s.rule}


def checked(c: manage.Checked) -> dict[str, Any]:
    return {
        "valid": True,
        "rule": c.rule,
        "conditions": c.conditions,
        "includes": list(c.includes),
        "warnings": c.warnings,
    }


def installed(items: list[install.Installed]) -> dict[str, Any]:
    return {
        "installed": [
            {
                "key": i.key,
                "segment_id": i.segment_id,
                "status": i.status,
                "version": i.version,
                "created": i.created,
            }
            for i in items
        ]
    }
