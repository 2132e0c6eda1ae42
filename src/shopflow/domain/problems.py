"""Errors that list every problem found in a document (a flow definition, a segment rule), each
naming the path of the node it concerns, so an API answer and a CLI message can point at it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ProblemsError(ValueError):
    """Every problem found, one per line under `title`."""

    title = "invalid document"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{self.title}:\n" + "\n".join(f"  - {p}" for p in problems))

    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]
