"""docs/demo.md documents every number of the simulation, with the value the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from shopflow.simulation import assumptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "demo.md"
ROW = re.compile(r"^\|\s*`(?P<name>[a-z_.]+)`\s*\|\s*(?P<value>[0-9.]+)\s*\|\s*(?P<source>.+?)\s*\|\s*$")


def documented() -> dict[str, tuple[float, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["name"]] = (float(match["value"]), match["source"])
    return rows


def test_every_behaviour_number_is_documented_with_its_value_and_a_source() -> None:
    docs = documented()
    figures = assumptions.Behaviour().figures()
    assert sorted(docs) == sorted(figures)
    for name, value in figures.items():
        assert docs[name][0] == value, name
        source = docs[name][1]
        assert "Assumption" in source or "Klaviyo" in source or "Baymard" in source, name


def test_the_abandonment_figure_is_baymards() -> None:
    value, source = documented()["checkout_abandonment"]
    assert value == 0.70
    assert "Baymard" in source
