"""The guards' pure rules for address hygiene (undeliverable, fake, role) and for preference-center
choices on every channel; the send node's topic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopflow.domain import action_nodes, flows, guards
from shopflow.domain.step import Facts, Run, Send, step
from shopflow.ingest import hygiene
from shopflow.messaging.delivery import gate as gates
from shopflow.store import preferences
from shopflow.store.messages import ClaimedMessage

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # daytime in New York: no quiet hours in the way
EMAIL = guards.Facts("email", False, True, "ana@acme-shoes.com", "subscribed", None, "valid", False)


@pytest.mark.parametrize(
    ("changes", "settings", "reason"),
    [
        ({}, {}, None),
        ({"email_status": None}, {}, None),  # not checked yet (a profile from before the check)
        ({"email_status": "invalid_syntax"}, {}, "undeliverable_address"),
        ({"email_status": "invalid_syntax", "transactional": True}, {}, "undeliverable_address"),
        ({"email_status": "reserved_domain", "transactional": True}, {}, "undeliverable_address"),
        ({"email_status": "reserved_domain"}, {"deliver_to_reserved_domains": True}, None),
        ({"email_status": "invalid_syntax"}, {"deliver_to_reserved_domains": True}, "undeliverable_address"),
        ({"email_status": "fake"}, {}, "fake_address"),
        ({"email_status": "fake", "transactional": True}, {}, None),
        ({"email_status": "fake", "consent": "unsubscribed"}, {}, "fake_address"),
        ({"email_role": True}, {}, "role_address"),
        ({"email_role": True}, {"send_to_role_addresses": True}, None),
        ({"email_role": True, "transactional": True}, {}, None),
        ({"email_role": True, "consent": "never_subscribed"}, {"send_to_role_addresses": True}, "no_consent"),
        # A suppression is recorded first: it is the reason an operator acted on.
        ({"email_status": "invalid_syntax", "suppression": "hard_bounce"}, {}, "suppressed"),
        # The email flags say nothing about a phone number or a browser.
        ({"channel": "sms", "email_status": "invalid_syntax", "email_role": True}, {}, None),
        ({"channel": "push", "email_status": "fake"}, {}, None),
    ],
)
def test_address_hygiene_guards(
    changes: dict[str, Any], settings: dict[str, Any], reason: str | None
) -> None:
    facts = replace(EMAIL, **changes)
    assert guards.check(facts, **gates.check_settings(settings, facts.channel)) == reason


def test_role_addresses_are_refused_marketing_by_default() -> None:
    assert guards.DEFAULTS["send_to_role_addresses"] is False
    assert gates.check_settings({}, "email") == {
        "requires_subscribed": True,
        "send_to_role_addresses": False,
        "deliver_to_reserved_domains": False,
    }


@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({}, False),
        ({"from_email": "news@acme-shoes.com"}, False),
        # A store sending from a reserved name itself is a test or demo store: its mail goes to a sink.
        ({"from_email": "store@example.com"}, True),
        ({"from_email": "hello@demo-store.example"}, True),
        ({"from_email": "store@example.com", "deliver_to_reserved_domains": False}, False),
        ({"from_email": "news@acme-shoes.com", "deliver_to_reserved_domains": True}, True),
    ],
)
def test_reserved_domains_by_setting_or_by_the_stores_own_from_address(
    settings: dict[str, Any], allowed: bool
) -> None:
    assert gates.check_settings(settings, "email")["deliver_to_reserved_domains"] is allowed


def msg(channel: str, **context: Any) -> ClaimedMessage:
    return ClaimedMessage(1, "ws", 7, channel, "t", False, None, dict(context), 1)


def gate(pref: guards.Preference) -> guards.Gate:
    facts = guards.BatchFacts(preferences={7: pref}, contacts={7: guards.Contact("UTC", None)})
    return guards.Gate({"quiet_hours_sms": ""}, facts, T0)


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_pause_and_topic_opt_out_hold_on_every_channel(channel: str) -> None:
    facts = replace(EMAIL, channel=channel, address="+12125550100" if channel == "sms" else "x")
    paused = gate(guards.Preference(paused_until=T0 + timedelta(days=1)))
    assert paused.decide(msg(channel), facts).reason == "paused"
    over = gate(guards.Preference(paused_until=T0))
    assert over.decide(msg(channel), facts).reason is None

    opted_out = gate(guards.Preference(topics_off=frozenset({"promotional"})))
    assert opted_out.decide(msg(channel, topic="promotional"), facts).reason == "topic_opt_out"
    assert opted_out.decide(msg(channel, topic="educational"), facts).reason is None


def test_frequency_preference_counts_email_only() -> None:
    weekly = guards.Preference(frequency="weekly")
    for channel in ("sms", "push", "email"):
        g = gate(weekly)
        g.facts.history[(7, channel)] = guards.SendHistory(week=1)
        facts = replace(EMAIL, channel=channel)
        expected = "frequency_preference" if channel == "email" else "smart_sending"
        # SMS/push have no frequency choice; what stops the second one here is smart sending.
        g.facts.history[(7, channel)].last_sent_at = T0 - timedelta(hours=1)
        assert g.decide(msg(channel), facts).reason == expected


def test_transactional_ignores_preferences_on_every_channel() -> None:
    g = gate(
        guards.Preference(paused_until=T0 + timedelta(days=9), topics_off=frozenset(action_nodes.TOPICS))
    )
    for channel in ("email", "sms", "push"):
        receipt = replace(msg(channel, topic="promotional"), transactional=True)
        assert g.decide(receipt, replace(EMAIL, channel=channel, transactional=True)).send


# --- the send node's topic --------------------------------------------------------------------


def flow(send: dict[str, Any]) -> flows.FlowDefinition:
    return flows.load_flow(
        {
            "id": "promo",
            "name": "Promo",
            "trigger": {"type": "event", "event": "Checkout Started"},
            "entry": "s",
            "nodes": [
                {"id": "s", "type": "send", "template": "t", "next": "end", **send},
                {"id": "end", "type": "exit"},
            ],
        }
    )


def test_send_node_topic_goes_into_the_message_context() -> None:
    f = flow({"channel": "sms", "topic": "promotional"})
    result = step(f, Run(node_id="s", started_at=T0, wake_at=T0), Facts(), T0)
    (send,) = [e for e in result.effects if isinstance(e, Send)]
    assert (send.channel, dict(send.context)) == ("sms", {"topic": "promotional"})
    plain = step(flow({}), Run(node_id="s", started_at=T0, wake_at=T0), Facts(), T0)
    assert [dict(e.context) for e in plain.effects if isinstance(e, Send)] == [{}]


def test_the_topics_are_the_preference_centers() -> None:
    assert preferences.TOPICS == action_nodes.TOPICS == ("promotional", "product_news", "educational")


EXPECTED = "Input should be 'promotional', 'product_news' or 'educational'"


@pytest.mark.parametrize(
    ("send", "message"),
    [
        ({"topic": "news"}, f"nodes[0].topic: {EXPECTED} (got 'news')"),
        ({"topic": 3}, f"nodes[0].topic: {EXPECTED} (got 3)"),
        ({"topic": "<b>" * 100}, f"nodes[0].topic: {EXPECTED} (got '{('<b>' * 100)[:76]}...)"),
        (
            {"topic": "promotional", "transactional": True},
            "nodes[0].topic: a transactional message ignores topics; remove topic or transactional"
            " (got 'promotional')",
        ),
    ],
)
def test_send_node_topic_is_validated(send: dict[str, Any], message: str) -> None:
    with pytest.raises(flows.FlowDefinitionError) as err:
        flow(send)
    assert err.value.messages() == [message]


def test_the_email_status_values_are_the_ones_intake_writes() -> None:
    # domain.guards cannot import ingest; the values must stay the same strings.
    assert (guards.INVALID_SYNTAX, guards.RESERVED_DOMAIN, guards.FAKE) == (
        hygiene.INVALID_SYNTAX,
        hygiene.RESERVED_DOMAIN,
        hygiene.FAKE,
    )
