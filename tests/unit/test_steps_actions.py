"""step() on the action nodes, pure: their effects in order, and a webhook parking its run."""

from __future__ import annotations

from datetime import timedelta

from shopflow.domain.step import (
    Alert,
    AudienceChange,
    CallWebhook,
    Exit,
    Facts,
    ListChange,
    NodeEntered,
    Resolved,
    Send,
    StartFlow,
    UpdateProfile,
    WakeAt,
    step,
)

from .steps_support import T0, flow, start


def test_action_nodes_emit_their_effects_in_order() -> None:
    f = flow(
        [
            {"id": "sms", "type": "send", "channel": "sms", "template": "ship", "next": "push"},
            {
                "id": "push",
                "type": "send",
                "channel": "push",
                "template": "p",
                "transactional": True,
                "next": "up",
            },
            {
                "id": "up",
                "type": "update_profile",
                "set": {"tier": "gold", "vip": True},
                "unset": ["churn_risk"],
                "increment": {"points": 50},
                "next": "join",
            },
            {"id": "join", "type": "list", "action": "add", "list": "vip", "next": "ads"},
            {"id": "ads", "type": "audience", "action": "remove", "audience": "prospects", "next": "tell"},
            {"id": "tell", "type": "alert", "message": "VIP reached", "next": "hand"},
            {"id": "hand", "type": "start_flow", "flow": "post-purchase", "next": "end"},
            {"id": "end", "type": "exit"},
        ]
    )
    result = step(f, start(f), Facts(), T0)
    actions = [e for e in result.effects if not isinstance(e, NodeEntered)]
    assert actions == [
        Send("sms", "sms", "ship", False),
        Send("push", "push", "p", True),
        UpdateProfile(
            "up", set=(("tier", "gold"), ("vip", True)), unset=("churn_risk",), increment=(("points", 50),)
        ),
        ListChange("join", "add", "vip"),
        AudienceChange("ads", "remove", "prospects"),
        Alert("tell", "VIP reached"),
        StartFlow("hand", "post-purchase"),
        Exit("completed", "end"),
    ]


WEBHOOK = flow(
    [
        {
            "id": "hook",
            "type": "webhook",
            "url": "https://crm.example/loyalty",
            "body": {"x": 1},
            "next": "s",
        },
        {
            "id": "s",
            "type": "split",
            "condition": {"run": {"property": "webhooks.hook.body.tier", "op": "eq", "value": "gold"}},
            "yes": "gold",
            "no": "plain",
        },
        {"id": "gold", "type": "send", "template": "gold", "next": "end"},
        {"id": "plain", "type": "exit", "reason": "plain"},
        {"id": "end", "type": "exit"},
    ]
)


def test_webhook_parks_the_run_until_its_answer() -> None:
    facts = Facts(
        profile={"id": 4, "email": "a@example.com"}, trigger={"name": "Checkout Started", "properties": {}}
    )
    first = step(WEBHOOK, start(WEBHOOK), facts, T0)
    call = first.effects[1]
    assert isinstance(call, CallWebhook)
    assert (call.url, call.method, call.payload["data"], call.payload["profile"]["email"]) == (
        "https://crm.example/loyalty",
        "POST",
        {"x": 1},
        "a@example.com",
    )
    assert (first.run.node_id, first.run.waiting_since) == ("hook", T0)
    later = T0 + timedelta(minutes=1)
    # Not answered yet (woken by something else): it keeps waiting.
    assert step(WEBHOOK, first.run, facts, later).effects == (WakeAt(first.run.wake_at, "hook"),)  # type: ignore[arg-type]
    gold = Facts(webhooks={"hook": {"status": 200, "ok": True, "body": {"tier": "gold"}}})
    done = step(WEBHOOK, first.run, gold, later)
    assert done.effects[:3] == (
        Resolved("hook", "ok"),
        NodeEntered("s", "yes"),
        NodeEntered("gold"),
    )
    sent = done.effects[3]
    assert isinstance(sent, Send) and sent.context == {
        "webhooks": {"hook": {"status": 200, "ok": True, "body": {"tier": "gold"}}}
    }
    failed = Facts(webhooks={"hook": {"status": 404, "ok": False, "body": {}}})
    assert step(WEBHOOK, first.run, failed, later).effects[:2] == (
        Resolved("hook", "failed"),
        NodeEntered("s", "no"),
    )
    assert first.run.wake_at is not None
    gave_up = step(WEBHOOK, first.run, Facts(), first.run.wake_at)
    assert gave_up.effects[0] == Resolved("hook", "timeout")
    # Entered again with an answer on file (a loop back): no second call, the first answer is used.
    again = step(WEBHOOK, start(WEBHOOK), gold, later)
    assert not any(isinstance(e, CallWebhook) for e in again.effects)
    assert again.effects[:3] == (NodeEntered("hook"), Resolved("hook", "ok"), NodeEntered("s", "yes"))
