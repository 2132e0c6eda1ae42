"""The built-in segments (segments/library/*.yaml): behavioural, value and lifecycle rules a store
installs and edits. `shopflow segments library` / `install` come with the interfaces."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from shopflow.domain.segments import rules, validation


@dataclass(frozen=True)
class LibrarySegment:
    key: str
    name: str
    description: str
    rule: rules.Condition

    def rule_data(self) -> dict[str, Any]:
        return validation.dump(self.rule)


def _load(name: str, text: str) -> LibrarySegment:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or set(data) != {"key", "name", "description", "rule"}:
        raise ValueError(f"{name}: expected the keys key, name, description, rule")
    if f"{data['key']}.yaml" != name:
        raise ValueError(f"{name}: key {data['key']!r} does not match the file name")
    rule = validation.validate(data["rule"], validation.KnownNames())
    return LibrarySegment(
        str(data["key"]), str(data["name"]), " ".join(str(data["description"]).split()), rule
    )


def library() -> list[LibrarySegment]:
    """Every built-in segment, by key; a bad file raises ValueError naming it."""
    folder = resources.files("shopflow.segments") / "library"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            try:
                out.append(_load(entry.name, entry.read_text(encoding="utf-8")))
            except validation.RuleError as exc:
                raise ValueError(f"{entry.name}: {exc}") from None
    return out
