"""Segment use cases that change definitions: create, edit (a new version, backfilled again),
pause / resume / archive; and checking a rule against a workspace (validate, preview) without
saving. Each opens its own transaction; a refused input changes nothing stored.

Errors: `Invalid` (a 400: each problem names its path, `rule.all[2].where.metric: unknown
metric`), `SegmentNotFound` (a 404), `Conflict` (a 409: the segment's state forbids it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow import workspaces
from shopflow.domain.problems import Problem
from shopflow.domain.segments import rules, validation
from shopflow.segments import audience
from shopflow.store import db, segment_admin
from shopflow.store import segments as segment_store

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
MAX_KEY = 100
MAX_NAME = 200
MAX_SAMPLE = 100
CREATE_STATUSES = ("draft", "live")
ACTIONS = ("pause", "resume", "archive")
# Names of the API's own paths under /api/v1/segments/.
RESERVED_KEYS = frozenset({"library", "validate", "preview"})

Segment = segment_admin.SegmentRow


class Invalid(ValueError):
    """Bad input: every problem, each naming the path of its node or field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]


def summary(s: Segment) -> dict[str, Any]:
    """A segment as the API and the CLI show it (without its rule)."""
    return {
        "id": s.id,
        "key": s.key,
        "name": s.name,
        "status": s.status,
        "version": s.version,
        "members": s.members,
        "includes": list(s.includes),
        "fire_on_backfill": s.fire_on_backfill,
        "backfill": {
            "status": s.backfill_status,
            "done": s.backfill_done,
            "total": s.backfill_total,
            "started_at": s.backfill_started_at,
            "finished_at": s.backfill_finished_at,
        },
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


class SegmentNotFound(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key: no segment {key!r} in this workspace")
        self.key = key


class Conflict(ValueError):
    """The segment's state forbids the change (archived, included by others, key taken)."""


@dataclass(frozen=True)
class Checked:
    """A rule that passed: as stored, its size in conditions, and warnings that do not refuse it."""

    rule: dict[str, Any]
    conditions: int
    includes: tuple[str, ...]
    warnings: list[str]


@dataclass(frozen=True)
class Preview:
    checked: Checked
    count: int
    sample: list[dict[str, Any]]


@dataclass(frozen=True)
class Edited:
    segment: Segment
    new_version: bool


@dataclass(frozen=True)
class StatusChange:
    segment: Segment
    old: str
    new: str


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key) or len(key) > MAX_KEY:
        raise Invalid(
            [
                Problem(
                    "key",
                    f"expected 1 to {MAX_KEY} letters, digits and _ . : - (starting with a letter or "
                    f"digit), got {rules.show(key)}",
                )
            ]
        )
    if key in RESERVED_KEYS:
        raise Invalid([Problem("key", f"{key!r} is reserved; choose another key")])
    return key


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise Invalid(
            [Problem("name", f"expected 1 to {MAX_NAME} characters (no NUL), got {rules.show(name)}")]
        )
    return name.strip()


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "NUL characters are not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode text (a lone surrogate)"
    return None


def _text_problems(data: Any, path: str) -> list[Problem]:
    """Strings no database stores as text (NUL, lone surrogates), anywhere in the document."""
    found: list[Problem] = []
    todo: list[tuple[Any, str]] = [(data, path)]
    while todo and len(found) < 20:
        value, at = todo.pop()
        if isinstance(value, str):
            if (why := _bad_text(value)) is not None:
                found.append(Problem(at, why))
        elif isinstance(value, dict):
            for k, v in value.items():
                name = str(k)
                if (why := _bad_text(name)) is not None:
                    found.append(Problem(at, f"a field name: {why}"))
                    continue
                todo.append((v, f"{at}.{name}"))
        elif isinstance(value, list | tuple):
            todo.extend((v, f"{at}[{i}]") for i, v in enumerate(value))
    return sorted(found, key=lambda p: p.path)


def _load_text(text: str | bytes) -> Any:
    """JSON or YAML text -> data. Text that starts with `{` is read as JSON first, then as a YAML
    flow mapping (`{where: {metric: Placed Order}}`); when both fail, the JSON error is named."""
    try:
        return validation.load_document(text)
    except validation.RuleError:
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        if not raw.lstrip().startswith("{") or len(raw) > validation.MAX_RULE_CHARS:
            raise
        try:
            return validation.load_document("---\n" + raw)
        except validation.RuleError:
            pass
        raise


def parse_rule(data: Any) -> rules.Condition:
    """A rule from data or JSON/YAML text; Invalid names the path of every bad node."""
    try:
        if isinstance(data, str | bytes):
            data = _load_text(data)
        if problems := _text_problems(data, "rule"):
            raise Invalid(problems)
        return validation.parse(data)
    except validation.RuleError as exc:
        raise Invalid([p if p.path else Problem("rule", p.message) for p in exc.problems]) from None


def _check(
    conn: Connection, *, workspace_id: str, data: Any, own_key: str | None
) -> tuple[rules.Condition, Checked]:
    """Parse and check a rule against the workspace inside `conn`; Invalid lists every problem."""
    rule = parse_rule(data)
    names = segment_store.known_names(conn, workspace_id=workspace_id, own_key=own_key)
    problems = validation.check_references(rule, names)
    included = [(at, n.segment) for at, n in rules.walk(rule) if isinstance(n, rules.SegmentCondition)]
    state = segment_admin.statuses(conn, workspace_id=workspace_id, keys=sorted({k for _, k in included}))
    for at, key in included:
        if state.get(key) == "archived":
            problems.append(
                Problem(f"{at}.segment", f"segment {key!r} is archived; its members are not kept")
            )
    if problems:
        raise Invalid(problems)
    tracked = segment_store.tracked_dimensions(conn, workspace_id=workspace_id)
    warnings = []
    for at, node in rules.walk(rule):
        if isinstance(node, rules.EventCondition) and node.where.dimension is not None:
            dim = node.where.dimension[0]
            if (node.where.metric, dim) not in tracked:
                warnings.append(
                    f"{at}.where.{dim}: no saved segment filters {node.where.metric!r} by {dim} yet; "
                    "a count reads those rollups once a segment that does is saved and backfilled"
                )
    checked = Checked(
        validation.dump(rule), len(rules.walk(rule)), tuple(sorted(validation.segment_keys(rule))), warnings
    )
    return rule, checked


def find(conn: Connection, *, workspace_id: str, key: str) -> Segment:
    """The workspace's segment `key`, or SegmentNotFound (a key no segment can have included)."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key) or len(key) > MAX_KEY:
        raise SegmentNotFound(key)
    found = segment_admin.rows(conn, workspace_id=workspace_id, key=key)
    if not found:
        raise SegmentNotFound(key)
    return found[0]


def validate(engine: Engine, *, workspace_id: str, rule: Any, key: str | None = None) -> Checked:
    """Check a rule (data or JSON/YAML text) against the workspace, as the segment `key` would
    have it (None: a new segment); Invalid lists every problem."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        return _check(conn, workspace_id=workspace_id, data=rule, own_key=key)[1]


def preview(
    engine: Engine, *, workspace_id: str, rule: Any, now: datetime, key: str | None = None, sample: int = 10
) -> Preview:
    """How many profiles the rule holds for now, and the first `sample` of them by profile id
    (with their contact fields); saves nothing."""
    if not isinstance(sample, int) or isinstance(sample, bool) or not 0 <= sample <= MAX_SAMPLE:
        raise Invalid(
            [Problem("sample", f"expected a whole number from 0 to {MAX_SAMPLE}, got {rules.show(sample)}")]
        )
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        parsed, checked = _check(conn, workspace_id=workspace_id, data=rule, own_key=key)
        total = audience.count(conn, parsed, workspace_id=workspace_id, now=now)
        ids = (
            audience.member_ids(conn, parsed, workspace_id=workspace_id, now=now, limit=sample)
            if sample
            else []
        )
        members = segment_admin.contacts(conn, workspace_id=workspace_id, profile_ids=ids)
    return Preview(checked, total, members)


def create(
    engine: Engine,
    *,
    workspace_id: str,
    key: str,
    name: str,
    rule: Any,
    now: datetime,
    status: str = "live",
    fire_on_backfill: bool = False,
) -> Segment:
    """A new segment at version 1 whose membership backfills in the background."""
    key, name = check_key(key), _check_name(name)
    if status not in CREATE_STATUSES:
        raise Invalid(
            [Problem("status", f"expected one of {', '.join(CREATE_STATUSES)}, got {rules.show(status)}")]
        )
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        segment_admin.lock_definitions(conn, workspace_id=workspace_id)
        if segment_admin.rows(conn, workspace_id=workspace_id, key=key):
            raise Conflict(f"key: segment {key!r} already exists; edit it instead")
        _, checked = _check(conn, workspace_id=workspace_id, data=rule, own_key=key)
        segment_store.create(
            conn,
            workspace_id=workspace_id,
            key=key,
            name=name,
            rule=checked.rule,
            includes=checked.includes,
            now=now,
            status=status,
        )
        if fire_on_backfill:
            segment_admin.set_options(
                conn, workspace_id=workspace_id, key=key, now=now, fire_on_backfill=True
            )
        return find(conn, workspace_id=workspace_id, key=key)


def edit(
    engine: Engine,
    *,
    workspace_id: str,
    key: str,
    now: datetime,
    rule: Any = None,
    name: str | None = None,
    fire_on_backfill: bool | None = None,
) -> Edited:
    """Change a segment's name, options or rule. A changed rule becomes the next version and its
    backfill starts again (pending); the same rule again changes no version."""
    if name is not None:
        name = _check_name(name)
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        segment_admin.lock_definitions(conn, workspace_id=workspace_id)
        current = find(conn, workspace_id=workspace_id, key=key)
        if current.status == "archived":
            raise Conflict(f"status: segment {key!r} is archived; archived segments cannot be edited")
        changed = False
        if rule is not None:
            _, checked = _check(conn, workspace_id=workspace_id, data=rule, own_key=key)
            if checked.rule != current.rule:
                segment_store.update_rule(
                    conn,
                    workspace_id=workspace_id,
                    key=key,
                    rule=checked.rule,
                    includes=checked.includes,
                    now=now,
                )
                changed = True
        if name is not None or fire_on_backfill is not None:
            segment_admin.set_options(
                conn,
                workspace_id=workspace_id,
                key=key,
                now=now,
                name=name,
                fire_on_backfill=fire_on_backfill,
            )
        return Edited(find(conn, workspace_id=workspace_id, key=key), changed)


def change_status(engine: Engine, *, workspace_id: str, key: str, action: str, now: datetime) -> StatusChange:
    """pause (live -> paused: membership stops changing), resume (draft or paused -> live; the
    backfill starts again, as a paused segment missed events), archive (any -> archived; refused
    while a segment that is not archived includes it). Doing it again changes nothing."""
    if action not in ACTIONS:
        raise Invalid([Problem("action", f"expected one of {', '.join(ACTIONS)}, got {rules.show(action)}")])
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        segment_admin.lock_definitions(conn, workspace_id=workspace_id)
        current = find(conn, workspace_id=workspace_id, key=key)
        old = current.status
        new = {"pause": "paused", "resume": "live", "archive": "archived"}[action]
        if old == new:
            return StatusChange(current, old, new)
        if old == "archived":
            raise Conflict(f"status: segment {key!r} is archived; archived segments cannot be {action}d")
        if action == "pause" and old != "live":
            raise Conflict(f"status: segment {key!r} is {old}; only a live segment can be paused")
        if action == "archive":
            using = [k for k in segment_admin.includers(conn, workspace_id=workspace_id, key=key) if k != key]
            if using:
                raise Conflict(f"status: segment {key!r} is included by {', '.join(using)}; edit those first")
        segment_admin.set_status(
            conn,
            workspace_id=workspace_id,
            key=key,
            status=new,
            now=now,
            restart_backfill=action == "resume" and old == "paused",
        )
        return StatusChange(find(conn, workspace_id=workspace_id, key=key), old, new)
