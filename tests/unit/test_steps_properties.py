"""Properties (hypothesis) of step() over a flow using every node type: no run is lost, exits are
final, delays and wait timeouts never fire early, the same input gives the same output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shopflow.domain import action_nodes, timing_nodes
from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition, load_flow, parse_duration
from shopflow.domain.step import Exit, Facts, NodeEntered, Resolved, Run, Send, WakeAt, step

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

EVERYTHING: FlowDefinition = load_flow(
    {
        "id": "everything",
        "name": "Every node",
        "trigger": {"type": "event", "event": "Checkout Started", "key": "properties.checkout_id"},
        "flow_filter": {"not": {"event": "Unsubscribed"}},
        "entry": "hook",
        "nodes": [
            {
                "id": "hook",
                "type": "webhook",
                "url": "https://example.com/h",
                "next": "ab",
                "on_failure": "ab",
            },
            {
                "id": "ab",
                "type": "random",
                "branches": [{"percent": 50, "next": "s1"}, {"percent": 50, "next": "m1"}],
            },
            {
                "id": "s1",
                "type": "split",
                "branches": [
                    {"condition": {"list": "vip"}, "next": "up"},
                    {"condition": {"event": "Viewed Product", "min_count": 2, "within": "P7D"}, "next": "m1"},
                ],
                "default": "m1",
            },
            {"id": "m1", "type": "send", "template": "first", "next": "w"},
            {
                "id": "w",
                "type": "wait",
                "until": {"event": "Placed Order", "same_key": True},
                "timeout": "P2D",
                "on_event": "thanks",
                "on_timeout": "d",
            },
            {"id": "d", "type": "delay", "until": {"best_send_hour": True}, "next": "w2"},
            {
                "id": "w2",
                "type": "wait",
                "until": {"engagement": "opened", "node": "m1"},
                "timeout": "PT12H",
                "on_event": "m2",
                "on_timeout": "bday",
            },
            {
                "id": "bday",
                "type": "delay",
                "until": {"date_property": "properties.birthday", "offset": "-P1D", "yearly": True},
                "next": "m2",
            },
            {"id": "m2", "type": "send", "channel": "sms", "template": "second", "next": "l"},
            {"id": "l", "type": "list", "action": "add", "list": "vip", "next": "aud"},
            {"id": "aud", "type": "audience", "action": "add", "audience": "buyers", "next": "al"},
            {"id": "al", "type": "alert", "message": "look", "next": "sf"},
            {"id": "sf", "type": "start_flow", "flow": "other", "next": "end"},
            {"id": "thanks", "type": "send", "template": "thanks", "next": "ts"},
            {
                "id": "ts",
                "type": "trigger_split",
                "condition": {"property": "properties.total", "op": "gte", "value": 100},
                "yes": "up",
                "no": "end",
            },
            {"id": "up", "type": "update_profile", "increment": {"points": 1}, "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    }
)
PARKING = {
    n.id: n for n in EVERYTHING.nodes if isinstance(n, timing_nodes.WaitNode | action_nodes.WebhookNode)
}

offsets = st.integers(min_value=-2 * 86400, max_value=6 * 86400).map(lambda s: timedelta(seconds=s))
names = st.sampled_from(["Placed Order", "Opened Email", "Viewed Product", "Unsubscribed"])


@st.composite
def facts(draw: st.DrawFn) -> Facts:
    events = tuple(
        EventFact(
            i,
            draw(names),
            T0 + draw(offsets),
            {
                "checkout_id": draw(st.sampled_from(["ck-1", "ck-2"])),
                "message_id": draw(st.sampled_from([1, 2])),
            },
        )
        for i in range(draw(st.integers(0, 5)))
    )
    hook = draw(st.sampled_from([None, True, False]))
    return Facts(
        profile={"properties": {"birthday": draw(st.sampled_from([None, "1990-01-09", "nonsense"]))}},
        events=events,
        trigger={"properties": {"total": draw(st.integers(0, 200))}},
        trigger_key="ck-1",
        trigger_event_id=draw(st.sampled_from([None, 0])),
        lists=frozenset(draw(st.sets(st.sampled_from(["vip", "other"])))),
        messages={1: "m1", 2: "m2"},
        webhooks={} if hook is None else {"hook": {"status": 200 if hook else 500, "ok": hook, "body": {}}},
        settings={"best_send_hour": draw(st.integers(0, 23))},
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Run, Facts, datetime]:
    node = draw(st.sampled_from([n.id for n in EVERYTHING.nodes]))
    wake = T0 + draw(offsets)
    since = T0 + draw(offsets) if node in PARKING and draw(st.booleans()) else None
    if since is not None:
        wake = since + _limit(node)
    run = Run(node_id=node, started_at=T0, wake_at=wake, id=draw(st.integers(1, 10**6)), waiting_since=since)
    now = T0 + draw(offsets)
    if since is not None:
        now = max(now, since)
    return run, draw(facts()), max(now, wake) if draw(st.booleans()) else now


def _limit(node_id: str) -> timedelta:
    node = PARKING[node_id]
    return (
        parse_duration(node.timeout)
        if isinstance(node, timing_nodes.WaitNode)
        else action_nodes.WEBHOOK_MAX_WAIT
    )


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_no_run_is_lost_and_nothing_fires_early(case: tuple[Run, Facts, datetime]) -> None:
    run, facts, now = case
    result = step(EVERYTHING, run, facts, now)
    new = result.run
    wakes = [e for e in result.effects if isinstance(e, WakeAt)]
    if new.status == "exited":
        assert new.wake_at is None and new.exit_reason and new.exited_at == now
        assert isinstance(result.effects[-1], Exit) and wakes == []
    else:
        assert new.status == "waiting" and new.wake_at is not None and new.wake_at > now
        assert len(wakes) == 1 and (wakes[0].at, wakes[0].node_id) == (new.wake_at, new.node_id)
        idle = result.effects == (WakeAt(new.wake_at, new.node_id or ""),) and new == run
        if idle:
            # Woken before its time (a delay's end, or a parked wait with nothing new): nothing moved.
            assert run.wake_at is not None and (run.wake_at > now or run.waiting_since is not None)
        elif new.waiting_since is not None:
            # Parked at a wait or webhook: its deadline is its arrival plus its limit, exactly.
            assert new.node_id in PARKING and new.waiting_since <= now
            assert new.wake_at == new.waiting_since + _limit(new.node_id)
        else:
            # A delay ran: the run sleeps until it ends (its next node may be a wait, not yet entered).
            entered = [e for e in result.effects if isinstance(e, NodeEntered)]
            assert entered and isinstance(EVERYTHING.node(entered[-1].node_id), timing_nodes.DelayNode)
    for effect in result.effects:
        if isinstance(effect, Resolved) and effect.note == "timeout":
            # A timeout fires at its deadline or later, never before.
            assert run.waiting_since is not None and now >= run.waiting_since + _limit(effect.node_id)
    not_parked = run.node_id not in PARKING or run.waiting_since is None
    if not_parked and run.wake_at is not None and run.wake_at > now and new.status != "exited":
        assert result.effects == (WakeAt(run.wake_at, run.node_id or ""),)
    assert step(EVERYTHING, run, facts, now) == result


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.lists(offsets, min_size=1, max_size=4))
def test_exits_are_final(case: tuple[Run, Facts, datetime], later: list[timedelta]) -> None:
    run, facts, now = case
    result = step(EVERYTHING, run, facts, now)
    for delta in later:
        if result.run.status != "exited":
            break
        again = step(EVERYTHING, result.run, facts, now + abs(delta))
        assert again.run == result.run and again.effects == ()


@settings(max_examples=150, deadline=None)
@given(facts(), st.integers(1, 10**6), st.lists(st.integers(0, 86400), min_size=1, max_size=10))
def test_a_run_walked_to_the_end_sends_each_node_at_most_once(
    facts: Facts, run_id: int, jitters: list[int]
) -> None:
    run = Run(node_id=EVERYTHING.entry, started_at=T0, wake_at=T0, id=run_id)
    now = T0
    sent: list[str] = []
    for jitter in jitters * 4:
        result = step(EVERYTHING, run, facts, now)
        sent += [e.node_id for e in result.effects if isinstance(e, Send)]
        run = result.run
        if run.status == "exited":
            break
        assert run.wake_at is not None and run.wake_at > now
        now = min(now + timedelta(seconds=jitter + 1), run.wake_at) if jitter % 3 == 0 else run.wake_at
    assert len(sent) == len(set(sent))
