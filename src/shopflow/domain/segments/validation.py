"""Reading and checking segment rules: every problem names the path of its node.

`parse` checks the shape (`rule.all[2].within: expected a window of whole days like P30D, got
'PT12H'`); `check_references` checks the names a rule uses against what the workspace has
(`rule.all[2].where.metric: unknown metric 'Placed Ordr' (did you mean 'Placed Order'?)`).
`validate` does both and raises RuleError listing them all.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from shopflow.domain import events as ev
from shopflow.domain.problems import Problem, ProblemsError
from shopflow.domain.segments import rules
from shopflow.domain.segments.rules import show

MAX_DEPTH = 24  # nested containers in the rule document
MAX_CONDITIONS = 200  # nodes of the tree: bounds the SQL a rule compiles to
MAX_RULE_CHARS = 100_000
_SHOW_INPUT = ("segment_condition", "literal_error", "string_too_short", "string_too_long")
_ADAPTER: TypeAdapter[rules.Condition] = TypeAdapter(rules.Condition)

# Metrics every workspace knows, seen or not: a rule may name them before the first such event.
CANONICAL_METRICS = frozenset(
    value for name, value in vars(ev).items() if name.isupper() and isinstance(value, str) and " " in value
)


class RuleError(ProblemsError):
    """Every problem found in a rule, each naming the path of its node."""

    title = "invalid segment rule"


@dataclass(frozen=True)
class KnownNames:
    """What a workspace has, for checking the names a rule uses.

    `segments` maps each segment key to the keys of the segments its rule includes (to refuse a
    cycle); `own_key` is the key of the segment whose rule this is (None for a preview).
    """

    metrics: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()
    segments: Mapping[str, frozenset[str]] = field(default_factory=dict)
    own_key: str | None = None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few lines of aliases can expand to millions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not allowed in a segment rule")
        return super().compose_node(parent, index)


def load_document(source: str | bytes) -> Any:
    """JSON or YAML text -> data; RuleError when it is neither."""
    text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
    if len(text) > MAX_RULE_CHARS:
        raise RuleError([Problem("", f"rule is {len(text)} characters; the limit is {MAX_RULE_CHARS}")])
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        return yaml.load(text, Loader=_NoAliasLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise RuleError([Problem("", f"not valid JSON or YAML: {exc}")]) from None
    except RecursionError:
        raise RuleError([Problem("", f"nested deeper than {MAX_DEPTH} levels")]) from None


def _size(data: Any) -> tuple[int, int]:
    """(deepest nesting, mappings) of a document, without recursion."""
    deepest, mappings = 0, 0
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(value, Mapping):
            mappings += 1
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            todo.extend((v, depth + 1) for v in value)
    return deepest, mappings


def _format_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, str) and part.startswith("<") and part.endswith(">"):
            continue  # a union tag, not a key the owner wrote
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("from" if part == "from_" else part)
    return out


def _problems(exc: ValidationError, prefix: str) -> list[Problem]:
    found = []
    for err in exc.errors():
        path = _format_path(prefix, err["loc"])
        value = err.get("input")
        kind = err["type"]
        message = err["msg"].removeprefix("Value error, ")
        if kind == "missing":
            found.append(Problem(path, "required, but missing"))
        elif kind == "extra_forbidden":
            found.append(Problem(path, f"unknown field (value {show(value)})"))
        elif kind == "too_short":
            least = (err.get("ctx") or {}).get("min_length", 1)
            found.append(
                Problem(path, f"expected at least {least} item{'s' if least != 1 else ''}, got none")
            )
        elif kind in _SHOW_INPUT or kind.endswith("_type"):
            found.append(Problem(path, f"{message}, got {show(value)}"))
        else:
            found.append(Problem(path, message))
    return found


def parse(data: Any, *, path: str = "rule") -> rules.Condition:
    """Validate a rule's shape (data, or JSON/YAML text); RuleError names each bad node."""
    if isinstance(data, str | bytes):
        data = load_document(data)
    if not isinstance(data, Mapping):
        raise RuleError([Problem(path, f"expected a condition (a mapping), got {show(data)}")])
    deepest, mappings = _size(data)
    if deepest > MAX_DEPTH:
        raise RuleError([Problem(path, f"nested deeper than {MAX_DEPTH} levels")])
    if mappings > MAX_CONDITIONS * 3:
        raise RuleError([Problem(path, f"more than {MAX_CONDITIONS} conditions")])
    try:
        rule = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise RuleError(_problems(exc, path)) from None
    if len(rules.walk(rule)) > MAX_CONDITIONS:
        raise RuleError([Problem(path, f"more than {MAX_CONDITIONS} conditions")])
    return rule


def _suggest(name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _cycle(start: str, own: str, graph: Mapping[str, frozenset[str]]) -> list[str] | None:
    """The chain of includes from `start` back to `own`, if there is one."""
    todo: list[list[str]] = [[start]]
    seen: set[str] = set()
    while todo:
        chain = todo.pop()
        if chain[-1] == own:
            return chain
        if chain[-1] in seen:
            continue
        seen.add(chain[-1])
        todo.extend([*chain, nxt] for nxt in sorted(graph.get(chain[-1], frozenset())))
    return None


def check_references(rule: rules.Condition, names: KnownNames, *, path: str = "rule") -> list[Problem]:
    """The metrics, lists and segments the rule names that the workspace does not have."""
    metrics = names.metrics | CANONICAL_METRICS
    found: list[Problem] = []
    for at, node in rules.walk(rule, path):
        if isinstance(node, rules.EventCondition) and node.where.metric not in metrics:
            metric = node.where.metric
            found.append(
                Problem(f"{at}.where.metric", f"unknown metric {metric!r}{_suggest(metric, metrics)}")
            )
        elif isinstance(node, rules.ListCondition) and node.list not in names.lists:
            found.append(
                Problem(f"{at}.list", f"unknown list {node.list!r}{_suggest(node.list, names.lists)}")
            )
        elif isinstance(node, rules.SegmentCondition):
            key = node.segment
            if names.own_key is not None and key == names.own_key:
                found.append(Problem(f"{at}.segment", f"a segment cannot include itself ({key!r})"))
            elif key not in names.segments:
                known = frozenset(names.segments)
                found.append(Problem(f"{at}.segment", f"unknown segment {key!r}{_suggest(key, known)}"))
            elif names.own_key is not None:
                chain = _cycle(key, names.own_key, names.segments)
                if chain is not None:
                    loop = " -> ".join([names.own_key, *chain])
                    found.append(Problem(f"{at}.segment", f"including {key!r} would make a cycle: {loop}"))
    return found


def validate(data: Any, names: KnownNames | None = None, *, path: str = "rule") -> rules.Condition:
    """Parse a rule and (given the workspace's names) check its references; RuleError lists all."""
    rule = parse(data, path=path)
    if names is not None:
        problems = check_references(rule, names, path=path)
        if problems:
            raise RuleError(problems)
    return rule


def segment_keys(rule: rules.Condition) -> frozenset[str]:
    """The segments a rule includes (the edges of the include graph)."""
    return frozenset(n.segment for _, n in rules.walk(rule) if isinstance(n, rules.SegmentCondition))


def dump(rule: rules.Condition) -> dict[str, Any]:
    """The rule as plain JSON data, as stored (defaults written out)."""
    data = _ADAPTER.dump_python(rule, mode="json", by_alias=True, exclude_none=True)
    assert isinstance(data, dict)
    return data
