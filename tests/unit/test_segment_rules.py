"""Segment rules: what validation says about bad rules (exact texts, with the node's path)."""

from __future__ import annotations

from typing import Any

import pytest

from shopflow.domain.segments import validation
from shopflow.domain.segments.validation import KnownNames, RuleError


def problems(data: Any, names: KnownNames | None = None) -> list[str]:
    with pytest.raises(RuleError) as caught:
        validation.validate(data, names)
    return caught.value.messages()


def test_a_good_rule_parses_and_dumps_with_defaults_written_out() -> None:
    rule = validation.parse(
        {"all": [{"property": "properties.country", "value": "US"}, {"where": {"metric": "Viewed Product"}}]}
    )
    assert validation.dump(rule) == {
        "all": [
            {"property": "properties.country", "op": "eq", "value": "US"},
            {"where": {"metric": "Viewed Product"}, "measure": "count", "op": "gte", "value": 1},
        ]
    }


def test_yaml_and_json_text_parse_the_same() -> None:
    yaml_rule = validation.parse("any:\n  - {consent: email}\n  - {list: newsletter}\n")
    json_rule = validation.parse('{"any": [{"consent": "email"}, {"list": "newsletter"}]}')
    assert yaml_rule == json_rule


def test_unknown_metric_names_the_path_and_suggests() -> None:
    rule = {
        "all": [
            {"property": "properties.country", "value": "US"},
            {"consent": "email"},
            {"where": {"metric": "Placed Ordr"}, "within": "P30D"},
        ]
    }
    assert problems(rule, KnownNames()) == [
        "rule.all[2].where.metric: unknown metric 'Placed Ordr' (did you mean 'Placed Order'?)"
    ]
    assert problems({"where": {"metric": "Wishlisted"}}, KnownNames()) == [
        "rule.where.metric: unknown metric 'Wishlisted'"
    ]
    assert validation.validate(
        {"where": {"metric": "Wishlisted"}}, KnownNames(metrics=frozenset({"Wishlisted"}))
    )


def test_unknown_lists_and_segments_and_cycles() -> None:
    names = KnownNames(
        lists=frozenset({"newsletter"}),
        segments={"vip": frozenset(), "big": frozenset({"vip", "mine"}), "mine": frozenset({"big"})},
        own_key="vip",
    )
    rule = {
        "any": [{"list": "newsleter"}, {"segment": "vip"}, {"segment": "nope"}, {"not": {"segment": "big"}}]
    }
    assert problems(rule, names) == [
        "rule.any[0].list: unknown list 'newsleter' (did you mean 'newsletter'?)",
        "rule.any[1].segment: a segment cannot include itself ('vip')",
        "rule.any[2].segment: unknown segment 'nope'",
        "rule.any[3].not.segment: including 'big' would make a cycle: vip -> big -> vip",
    ]
    cyclic = KnownNames(
        segments={"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset()}, own_key="c"
    )
    assert problems({"segment": "a"}, cyclic) == [
        "rule.segment: including 'a' would make a cycle: c -> a -> b -> c"
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"wher": {"metric": "X"}},
            "rule: expected a condition with one of the keys all, any, not, property, where, list, segment, "
            'consent, suppressed, engaged, location, bucket, got {"wher": {"metric": "X"}}',
        ),
        ({"all": []}, "rule.all: expected at least 1 item, got none"),
        (
            {"not": 3},
            "rule.not: expected a condition with one of the keys all, any, not, property, where, "
            "list, segment, consent, suppressed, engaged, location, bucket, got 3",
        ),
        (
            {"property": "foo"},
            "rule.property: unknown profile field 'foo'; expected one of email, email_status, phone, external_id, "
            "first_name, last_name, timezone, email_role, order_count, total_spent, created_at, last_active_at, "
            "first_order_at, last_order_at, or properties.<name>",
        ),
        (
            {"property": "properties.items.0"},
            "rule.property: 'properties.items.0': a key after 'properties.' cannot be a number ('0')",
        ),
        (
            {"property": "order_count", "op": "contains", "value": "1"},
            "rule.op: op 'contains' does not apply to the number field order_count; expected one of eq, neq, "
            "in, not_in, gt, gte, lt, lte, is_set, is_not_set",
        ),
        ({"property": "email", "value": 3}, "rule.value: email is a text field: expected a string, got 3"),
        (
            {"property": "total_spent", "op": "gt", "value": 1.23456},
            "rule.value: expected an amount with at most 4 decimal places, up to 1,000,000,000, got 1.23456",
        ),
        (
            {"property": "properties.x", "op": "in", "value": 3},
            "rule.value: op 'in' expects a list of 1 to 1000 values, got 3",
        ),
        (
            {"property": "properties.x", "op": "is_set", "value": 3},
            "rule.value: op 'is_set' takes no value, got 3",
        ),
        ({"property": "properties.x", "op": "gt"}, "rule.value: op 'gt' needs a value"),
        (
            {"property": "properties.x", "op": "gt", "value": "5"},
            "rule.value: op 'gt' expects a number, got '5'",
        ),
        (
            {"property": "properties.b", "op": "before", "value": "2026-02-30"},
            "rule.value: op 'before' expects a date like 2026-01-31, got '2026-02-30'",
        ),
        (
            {"property": "created_at", "op": "in_last_days", "value": -1},
            "rule.value: op 'in_last_days' expects a whole number of days from 0 to 36500, got -1",
        ),
        (
            {"where": {"metric": "X", "brand": "a", "category": "b"}},
            "rule.where: filter on at most one of category, product_id, brand, discounted (rollups keep one "
            "dimension per row); got category and brand: combine two event conditions with all instead",
        ),
        (
            {"where": {"metric": "X"}, "within": "PT3H"},
            "rule.within: expected a window of whole days like P30D (at most P36500D), got 'PT3H'",
        ),
        (
            {"where": {"metric": "X"}, "within": "P3D", "since": "2026-01-01"},
            "rule.since: give within (the last N days) or since (a date), not both",
        ),
        ({"where": {"metric": "X"}, "measure": "last"}, "rule.op: measure 'last' needs an op"),
        (
            {"where": {"metric": "X"}, "measure": "last", "op": "gte", "value": 3},
            "rule.op: op 'gte' does not apply to measure 'last'; expected one of in_last_days, "
            "more_than_days_ago, before, after",
        ),
        (
            {"where": {"metric": "X"}, "value": 1.5},
            "rule.value: a count is a whole number from 0 on, got 1.5",
        ),
        (
            {"where": {"metric": "X"}, "measure": "sum", "op": "gte"},
            "rule.value: measure 'sum' needs a value",
        ),
        ({"where": {"metric": "X"}, "wthin": "P3D"}, "rule.wthin: unknown field (value 'P3D')"),
        ({"where": {}}, "rule.where.metric: required, but missing"),
        ({"consent": "fax"}, "rule.consent: Input should be 'email', 'sms' or 'push', got 'fax'"),
        (
            {"engaged": "sms", "action": "opened"},
            "rule.action: sms messages have no tracked opens; use clicked or opened_or_clicked",
        ),
        ({"engaged": "email", "at_least": 4, "of_last": 3}, "rule: at_least (4) cannot exceed of_last (3)"),
        (
            {"engaged": "email", "at_least": 3},
            "rule: give at_least and of_last together (at least 3 of the last 10)",
        ),
        ({"location": {}}, "rule.location: give at least one of country, region, city, timezone"),
        ({"bucket": {"salt": "a", "from": 5, "to": 3}}, "rule.bucket: from (5) must be below to (3)"),
        (
            {"bucket": {"salt": "a", "from": -1, "to": 3}},
            "rule.bucket.from: Input should be greater than or equal to 0",
        ),
    ],
)
def test_bad_rules_get_the_path_of_the_bad_node(rule: dict[str, Any], expected: str) -> None:
    assert problems(rule) == [expected]


def test_every_problem_is_reported_at_once() -> None:
    rule = {"any": [{"consent": "fax"}, {"property": "properties.x", "op": "gt", "value": "a"}]}
    assert problems(rule) == [
        "rule.any[0].consent: Input should be 'email', 'sms' or 'push', got 'fax'",
        "rule.any[1].value: op 'gt' expects a number, got 'a'",
    ]


def test_limits_on_depth_size_and_text() -> None:
    deep: dict[str, Any] = {"consent": "email"}
    for _ in range(30):
        deep = {"not": deep}
    assert problems(deep) == ["rule: nested deeper than 24 levels"]
    wide = {"any": [{"consent": "email"}] * 201}
    assert problems(wide) == ["rule: more than 200 conditions"]
    assert problems("{not json") == [
        "not valid JSON or YAML: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]
    assert problems("a: &x [1]\nb: *x\n") == [
        "not valid JSON or YAML: aliases are not allowed in a segment rule"
    ]
    assert problems([1, 2]) == ["rule: expected a condition (a mapping), got [1, 2]"]
