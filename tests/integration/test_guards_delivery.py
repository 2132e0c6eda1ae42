"""Every guard, through real delivery, on SQLite and PostgreSQL: the skip (or deferral) and its
reason as recorded in the messages table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.delivery import gate
from shopflow.store import db, preferences, senders
from shopflow.testing import InMemoryEmailChannel
from tests.integration.guards_support import (
    deliver,
    history,
    outcome,
    person,
    queue,
    row,
    suppress,
    workspace,
)

H = timedelta(hours=1)
D = timedelta(days=1)
NO_SMART = {"smart_sending": False}


def test_consent_guards_record_their_reason(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    gone = person(engine, ws.id, clock, "gone@example.org", status="unsubscribed")
    never = person(engine, ws.id, clock, "never@example.org", status=None)
    ok = person(engine, ws.id, clock, "ok@example.org")
    ids = {pid: queue(engine, ws.id, pid, clock.now(), key=f"m{pid}") for pid in (gone, never, ok)}
    deliver(engine, clock)
    assert outcome(engine, ids[gone]) == ("skipped", "unsubscribed")
    assert outcome(engine, ids[never]) == ("skipped", "no_consent")
    assert outcome(engine, ids[ok]) == ("sent", None)


def test_suppression_blocks_even_transactional(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "bounced@example.org")
    suppress(engine, ws.id, pid, clock.now())
    receipt = queue(engine, ws.id, pid, clock.now(), key="receipt", transactional=True)
    deliver(engine, clock)
    assert outcome(engine, receipt) == ("skipped", "suppressed")


def test_transactional_bypasses_consent_smart_sending_caps_and_quiet_hours(
    engine: Engine, clock: SimulatedClock
) -> None:
    # 09:00 UTC is 04:00 in New York: inside these quiet hours.
    ws = workspace(engine, clock, quiet_hours_email="21:00-08:00").workspace
    pid = person(
        engine, ws.id, clock, "t@example.org", status="unsubscribed", traits={"timezone": "America/New_York"}
    )
    history(engine, ws.id, pid, [clock.now() - H], opened=[False])
    receipt = queue(engine, ws.id, pid, clock.now(), key="receipt", transactional=True)
    ch = InMemoryEmailChannel()
    deliver(engine, clock, ch)
    assert outcome(engine, receipt) == ("sent", None)
    assert len(ch.sent) == 1


def test_smart_sending_skips_within_16_hours(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock, frequency_cap_email_day=2).workspace  # only smart sending applies
    pid = person(engine, ws.id, clock, "s@example.org")
    history(engine, ws.id, pid, [clock.now() - 15 * H], opened=[True])
    early = queue(engine, ws.id, pid, clock.now(), key="early")
    deliver(engine, clock)
    assert outcome(engine, early) == ("skipped", "smart_sending")
    clock.advance(2 * H)  # 17 h after the last one
    later = queue(engine, ws.id, pid, clock.now(), key="later")
    deliver(engine, clock)
    assert outcome(engine, later) == ("sent", None)


def test_two_messages_in_one_batch_respect_smart_sending(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "b@example.org")
    first = queue(engine, ws.id, pid, clock.now(), key="first")
    second = queue(engine, ws.id, pid, clock.now(), key="second")
    deliver(engine, clock)
    assert outcome(engine, first) == ("sent", None)
    assert outcome(engine, second) == ("skipped", "smart_sending")


def test_frequency_cap_day_and_week(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "f@example.org")
    history(engine, ws.id, pid, [clock.now() - 2 * H], opened=[True])
    same_day = queue(engine, ws.id, pid, clock.now(), key="same-day", context=NO_SMART)
    deliver(engine, clock)
    assert outcome(engine, same_day) == ("skipped", "frequency_cap")

    other = person(engine, ws.id, clock, "w@example.org")
    history(engine, ws.id, other, [clock.now() - k * D for k in (2, 3, 4)], opened=[True] * 3)
    fourth = queue(engine, ws.id, other, clock.now(), key="fourth", context=NO_SMART)
    deliver(engine, clock)
    assert outcome(engine, fourth) == ("skipped", "frequency_cap")


def test_engaged_readers_get_a_higher_cap(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    times = [clock.now() - k * D for k in (25, 20, 15, 10)] + [clock.now() - 20 * H]
    keen = person(engine, ws.id, clock, "keen@example.org")
    history(engine, ws.id, keen, times, opened=[True, True, True, False, False])  # 60 %
    average = person(engine, ws.id, clock, "avg@example.org")
    history(engine, ws.id, average, times, opened=[True, True, False, False, False])  # 40 %: not > 40
    m_keen = queue(engine, ws.id, keen, clock.now(), key="keen", context=NO_SMART)
    m_avg = queue(engine, ws.id, average, clock.now(), key="avg", context=NO_SMART)
    deliver(engine, clock)
    assert outcome(engine, m_keen) == ("sent", None)
    assert outcome(engine, m_avg) == ("skipped", "frequency_cap")


def test_unengaged_readers_get_one_every_two_days(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "cold@example.org")
    times = [clock.now() - k * D for k in (25, 20, 15, 10)] + [clock.now() - 30 * H]
    history(engine, ws.id, pid, times, opened=[False] * 5)
    msg = queue(engine, ws.id, pid, clock.now(), key="cold")
    deliver(engine, clock)
    assert outcome(engine, msg) == ("skipped", "frequency_cap_unengaged")
    clock.advance(19 * H)  # 49 h since the last one
    again = queue(engine, ws.id, pid, clock.now(), key="cold-2")
    deliver(engine, clock)
    assert outcome(engine, again) == ("sent", None)


def test_fatigue_lowers_frequency(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "tired@example.org")
    before = [clock.now() - k * D for k in (55, 50, 45, 40, 35)]
    recent = [clock.now() - k * D for k in (25, 20, 15, 10)] + [clock.now() - 30 * H]
    # 100 % opened the month before, 40 % this month: down 60 %, though 40 % is not "unengaged".
    history(engine, ws.id, pid, before + recent, opened=[True] * 5 + [True, True, False, False, False])
    msg = queue(engine, ws.id, pid, clock.now(), key="tired")
    deliver(engine, clock)
    assert outcome(engine, msg) == ("skipped", "fatigue")


def test_quiet_hours_defer_to_local_morning(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock, quiet_hours_email="21:00-08:00").workspace
    # T0 is 09:00 UTC: 04:00 in New York (profile zone), 18:00 in Tokyo (from the phone number).
    ny = person(engine, ws.id, clock, "ny@example.org", traits={"timezone": "America/New_York"})
    tokyo = person(engine, ws.id, clock, "jp@example.org", traits={"phone": "+81312345678"})
    m_ny = queue(engine, ws.id, ny, clock.now(), key="ny")
    m_jp = queue(engine, ws.id, tokyo, clock.now(), key="jp")
    deliver(engine, clock)
    deferred = row(engine, m_ny)
    assert (deferred["status"], deferred["skip_reason"]) == ("queued", "quiet_hours")
    assert deferred["send_after"] == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert deferred["attempts"] == 0
    assert outcome(engine, m_jp) == ("sent", None)

    clock.advance(4 * H - timedelta(seconds=1))
    assert deliver(engine, clock) == 0
    clock.advance(timedelta(seconds=1))
    assert deliver(engine, clock) == 1
    sent = row(engine, m_ny)
    assert (sent["status"], sent["attempts"]) == ("sent", 1)


def test_workspace_daily_limit_defers_to_tomorrow(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock, daily_limit_email=2).workspace
    pids = [person(engine, ws.id, clock, f"p{n}@example.org") for n in range(3)]
    ids = [queue(engine, ws.id, pid, clock.now(), key=f"d{pid}") for pid in pids]
    deliver(engine, clock)
    assert [outcome(engine, m) for m in ids[:2]] == [("sent", None), ("sent", None)]
    last = row(engine, ids[2])
    assert (last["status"], last["skip_reason"]) == ("queued", "workspace_daily_limit")
    assert last["send_after"] == datetime(2026, 1, 6, 0, 0, tzinfo=UTC)


def test_preferences_pause_topic_and_frequency(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    paused = person(engine, ws.id, clock, "pause@example.org")
    picky = person(engine, ws.id, clock, "topic@example.org")
    weekly = person(engine, ws.id, clock, "weekly@example.org")
    with db.transaction(engine) as conn:
        for pid, kw in (
            (paused, {"paused_until": clock.now() + 30 * D}),
            (picky, {"topics_off": ["promotional"]}),
            (weekly, {"frequency": "weekly"}),
        ):
            preferences.save(
                conn,
                workspace_id=ws.id,
                profile_id=pid,
                topics_off=kw.get("topics_off", []),  # type: ignore[arg-type]
                frequency=kw.get("frequency"),  # type: ignore[arg-type]
                paused_until=kw.get("paused_until"),  # type: ignore[arg-type]
                unsubscribe_reason=None,
                now=clock.now(),
            )
    history(engine, ws.id, weekly, [clock.now() - 3 * D], opened=[True])
    m_paused = queue(engine, ws.id, paused, clock.now(), key="paused")
    m_promo = queue(engine, ws.id, picky, clock.now(), key="promo", context={"topic": "promotional"})
    m_edu = queue(engine, ws.id, picky, clock.now(), key="edu", context={"topic": "educational"})
    m_weekly = queue(engine, ws.id, weekly, clock.now(), key="weekly")
    deliver(engine, clock)
    assert outcome(engine, m_paused) == ("skipped", "paused")
    assert outcome(engine, m_promo) == ("skipped", "topic_opt_out")
    assert outcome(engine, m_edu) == ("sent", None)
    assert outcome(engine, m_weekly) == ("skipped", "frequency_preference")


def test_gate_reads_the_sender_domains_warmup_allowance(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock, from_email="news@fresh.example").workspace
    with db.transaction(engine) as conn:
        assert gate.load(conn, workspace=ws, recipients=[], now=clock.now()).warmup_left is None
        senders.add_domain(
            conn,
            workspace_id=ws.id,
            domain="fresh.example",
            selector="s1",
            algorithm="rsa-sha256",
            private_key_pem="unused here",
            now=clock.now(),
        )
        assert gate.load(conn, workspace=ws, recipients=[], now=clock.now()).warmup_left == 50
        assert gate.load(conn, workspace=ws, recipients=[], now=clock.now() + 40 * D).warmup_left is None


def test_address_hygiene_guards_record_their_reason(engine: Engine, clock: SimulatedClock) -> None:
    # A live store (its own From address is real): reserved names are refused like bad syntax.
    ws = workspace(engine, clock, from_email="news@acme-shoes.com").workspace
    pids = {
        a: person(engine, ws.id, clock, a)
        for a in (
            "bad@@acme-shoes.com",
            "ana@example.com",
            "test@test.com",
            "info@acme-shoes.com",
            "ana@acme-shoes.com",
        )
    }
    marketing = {a: queue(engine, ws.id, pid, clock.now(), key=f"m-{a}") for a, pid in pids.items()}
    receipts = {
        a: queue(engine, ws.id, pid, clock.now(), key=f"t-{a}", transactional=True) for a, pid in pids.items()
    }
    ch = InMemoryEmailChannel()
    deliver(engine, clock, ch)
    assert {a: outcome(engine, m) for a, m in marketing.items()} == {
        "bad@@acme-shoes.com": ("skipped", "undeliverable_address"),
        "ana@example.com": ("skipped", "undeliverable_address"),
        "test@test.com": ("skipped", "fake_address"),
        "info@acme-shoes.com": ("skipped", "role_address"),
        "ana@acme-shoes.com": ("sent", None),
    }
    # It cannot arrive, so not even a receipt goes; a fake or role address still gets its receipt.
    assert {a: outcome(engine, m) for a, m in receipts.items()} == {
        "bad@@acme-shoes.com": ("skipped", "undeliverable_address"),
        "ana@example.com": ("skipped", "undeliverable_address"),
        "test@test.com": ("sent", None),
        "info@acme-shoes.com": ("sent", None),
        "ana@acme-shoes.com": ("sent", None),
    }
    assert sorted(m.to_address for m in ch.sent) == [
        "ana@acme-shoes.com",
        "ana@acme-shoes.com",
        "info@acme-shoes.com",
        "test@test.com",
    ]


def test_role_addresses_get_marketing_when_the_store_allows_it(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock, from_email="news@acme-shoes.com", send_to_role_addresses=True).workspace
    pid = person(engine, ws.id, clock, "sales@acme-shoes.com")
    mid = queue(engine, ws.id, pid, clock.now(), key="m")
    deliver(engine, clock)
    assert outcome(engine, mid) == ("sent", None)


def test_reserved_domains_follow_the_setting(engine: Engine, clock: SimulatedClock) -> None:
    # The default From address (store@example.com) marks a test store: reserved names get mail...
    test_store = workspace(engine, clock).workspace
    sink = queue(
        engine, test_store.id, person(engine, test_store.id, clock, "ana@example.org"), clock.now(), key="a"
    )
    # ...unless the store says otherwise.
    strict = workspace(engine, clock, deliver_to_reserved_domains=False).workspace
    refused = queue(
        engine, strict.id, person(engine, strict.id, clock, "bo@example.org"), clock.now(), key="b"
    )
    deliver(engine, clock)
    assert outcome(engine, sink) == ("sent", None)
    assert outcome(engine, refused) == ("skipped", "undeliverable_address")
