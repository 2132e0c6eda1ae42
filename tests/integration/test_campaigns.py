"""Campaigns on both databases: the lifecycle through the real delivery (SMTP on loopback), the
audience merged and filtered, local time, cancel, pause, a relaunch after a crash, flash sales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.campaigns import content, launch, manage, reports
from shopflow.domain import campaigns as rules
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging import sms_settings
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.sink import Sink
from shopflow.messaging.templates import email as email_templates
from shopflow.messaging.templates import text as text_templates
from shopflow.store import campaigns as campaign_store
from shopflow.store import db
from shopflow.workers.embedded import Worker
from shopflow.workers.events import process_pending
from tests.integration import campaigns_support as support

sink = support.sink  # fixtures
smtp = support.smtp


def test_lifecycle_scheduled_launched_delivered_sent(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    people = [s.person(n) for n in ("ana", "ben", "cy")]
    s.add_list("newsletter", people)
    c = manage.create(
        engine,
        workspace_id=s.ws,
        data=support.definition(schedule={"kind": "at", "at": support.at(clock, hours=2)}),
        now=clock.now(),
    )
    assert c.status == "draft"
    assert manage.schedule(engine, workspace_id=s.ws, key="bf", now=clock.now()).status == "scheduled"
    assert launch.run_due(engine, now=clock.now()) == 0  # not yet due
    assert s.messages() == []

    clock.advance(timedelta(hours=2))
    assert launch.run_due(engine, now=clock.now()) == 1 + 3  # launched, three rows
    c = manage.get(engine, workspace_id=s.ws, key="bf")
    assert (c.status, c.recipients, c.launch_done) == ("sending", 3, True)
    assert [(m["profile_id"], m["status"], m["dedupe_key"]) for m in s.messages()] == [
        (pid, "queued", f"campaign:{c.id}:{pid}") for pid in people
    ]
    assert support.deliver(engine, clock, smtp) == 3
    assert sorted(str(m["To"]) for m in sink.messages()) == [
        "ana@example.org",
        "ben@example.org",
        "cy@example.org",
    ]
    assert launch.run_due(engine, now=clock.now()) == 1  # nothing waits: finished
    done = manage.progress(engine, workspace_id=s.ws, key="bf")
    assert done.campaign.status == "sent"
    assert done.as_dict() == {
        "recipients": 3, "queued": 0, "held": 0, "sending": 0, "sent": 3, "failed": 0, "skipped": {}
    }  # fmt: skip
    with pytest.raises(manage.Conflict, match="status: a sent campaign cannot cancel"):
        manage.cancel(engine, workspace_id=s.ws, key="bf", now=clock.now())


def test_audience_is_merged_once_and_every_exclusion_counted(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    ana, ben, cy, dee, eve = (
        s.person(n, tier="gold" if n in ("cy", "dee") else None) for n in ("ana", "ben", "cy", "dee", "eve")
    )
    fay = s.person("fay", tier="gold", consent="unsubscribed")
    s.add_list("newsletter", [ana, ben, cy])
    s.add_list("staff", [ben])
    s.add_list("vip-list", [cy, eve])
    s.add_segment("gold", {"property": "properties.tier", "op": "eq", "value": "gold"})
    s.add_segment("eves", {"property": "first_name", "op": "eq", "value": "Eve"})
    audience = {
        "include": {"lists": ["newsletter", "vip-list"], "segments": ["gold"]},
        "exclude": {"lists": ["staff"], "segments": ["eves"]},
    }
    manage.create(engine, workspace_id=s.ws, data=support.definition(audience=audience), now=clock.now())

    shown = manage.preview(engine, workspace_id=s.ws, key="bf", now=clock.now(), page=2)
    assert shown.as_dict() == {
        "recipients": 4,  # ana, cy, dee, fay
        "will_send": 3,
        "excluded": {"duplicate": 2, "excluded_list:staff": 1, "excluded_segment:eves": 1},
        "will_skip": {"unsubscribed": 1},
        "sample": [ana, cy, dee, fay],
    }
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now(), batch=2)
    assert [m["profile_id"] for m in s.messages()] == [ana, cy, dee, fay]
    assert support.deliver(engine, clock, smtp) == 4
    assert sorted(str(m["To"]) for m in sink.messages()) == [
        "ana@example.org",
        "cy@example.org",
        "dee@example.org",
    ]
    report = manage.progress(engine, workspace_id=s.ws, key="bf").as_dict()
    assert (report["sent"], report["skipped"]) == (3, {"unsubscribed": 1})


def test_local_time_sends_at_ten_in_each_zone(engine: Engine, clock: SimulatedClock) -> None:
    s = support.shop(engine, clock)  # 2026-01-05 09:00 UTC
    ny = s.person("ny", tz="America/New_York")
    tokyo = s.person("tokyo", tz="Asia/Tokyo")
    plain = s.person("plain")  # no zone: the store's (UTC)
    s.add_list("newsletter", [ny, tokyo, plain])
    manage.create(
        engine,
        workspace_id=s.ws,
        data=support.definition(schedule={"kind": "local_time", "date": "2026-01-07", "time": "10:00"}),
        now=clock.now(),
    )
    c = manage.schedule(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert c.launch_at == datetime(2026, 1, 6, 20, 0, tzinfo=UTC)  # 10:00 at UTC+14
    clock.advance(c.launch_at - clock.now())
    launch.run_due(engine, now=clock.now())
    assert {m["profile_id"]: m["send_after"] for m in s.messages()} == {
        ny: datetime(2026, 1, 7, 15, 0, tzinfo=UTC),
        tokyo: datetime(2026, 1, 7, 1, 0, tzinfo=UTC),
        plain: datetime(2026, 1, 7, 10, 0, tzinfo=UTC),
    }


def test_a_cancelled_campaign_sends_nothing_more(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    people = [s.person(n) for n in ("ana", "ben", "cy", "dee")]
    s.add_list("newsletter", people)
    manage.create(engine, workspace_id=s.ws, data=support.definition(), now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert support.deliver(engine, clock, smtp, limit=2) == 2
    c = manage.cancel(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert c.status == "cancelled"
    clock.advance(timedelta(hours=1))
    assert support.deliver(engine, clock, smtp) == 0
    assert launch.run_due(engine, now=clock.now()) == 0
    assert len(sink.messages()) == 2
    assert manage.progress(engine, workspace_id=s.ws, key="bf").as_dict() == {
        "recipients": 4, "queued": 0, "held": 0, "sending": 0, "sent": 2, "failed": 0,
        "skipped": {"campaign_cancelled": 2},
    }  # fmt: skip


def test_pause_holds_and_resume_releases(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person(n) for n in ("ana", "ben", "cy")])
    manage.create(engine, workspace_id=s.ws, data=support.definition(), now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now(), max_batches=1, batch=2)
    assert manage.pause(engine, workspace_id=s.ws, key="bf", now=clock.now()).status == "paused"
    assert [m["status"] for m in s.messages()] == ["held", "held"]
    assert support.deliver(engine, clock, smtp) == 0
    assert launch.run_due(engine, now=clock.now()) == 0  # a paused launch does not continue
    assert manage.resume(engine, workspace_id=s.ws, key="bf", now=clock.now()).status == "sending"
    assert launch.run_due(engine, now=clock.now()) == 1  # the last recipient
    assert support.deliver(engine, clock, smtp) == 3
    assert len(sink.messages()) == 3
    assert launch.run_due(engine, now=clock.now()) == 1
    assert manage.get(engine, workspace_id=s.ws, key="bf").status == "sent"


def test_a_launch_that_dies_resumes_without_duplicate_rows(engine: Engine, clock: SimulatedClock) -> None:
    s = support.shop(engine, clock)
    people = [s.person(f"p{i}") for i in range(7)]
    s.add_list("newsletter", people)
    s.add_list("others", people[3:])
    manage.create(
        engine,
        workspace_id=s.ws,
        data=support.definition(audience={"include": {"lists": ["newsletter", "others"]}}),
        now=clock.now(),
    )
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now(), max_batches=1, batch=3)
    assert len(s.messages()) == 3
    # A worker dies inside its batch: the transaction is rolled back, the cursor with it.
    with pytest.raises(RuntimeError), db.transaction(engine) as conn:
        c = manage.get(engine, workspace_id=s.ws, key="bf")
        assert launch.write_batch(conn, c, now=clock.now(), status="queued", batch=3) == 3
        raise RuntimeError("killed")
    assert len(s.messages()) == 3
    # A worker that wrote its rows but whose cursor was lost (or a second worker on a stale
    # cursor) writes the same batch again: the dedupe keys keep one row per recipient.
    with db.transaction(engine) as conn:
        c = manage.get(engine, workspace_id=s.ws, key="bf")
        campaign_store.update(conn, campaign_id=c.id, now=clock.now(), cursor_after_id=0, recipients=0)
    while launch.run_due(engine, now=clock.now(), batch=3):
        pass
    rows = s.messages()
    assert [m["profile_id"] for m in rows] == people
    assert len({m["dedupe_key"] for m in rows}) == 7
    assert manage.get(engine, workspace_id=s.ws, key="bf").launch_done


def test_flash_sale_end_skips_what_was_not_sent(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person(n) for n in ("ana", "ben", "cy", "dee")])
    data = support.definition(per_hour=2, ends_at=support.at(clock, hours=1))
    manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert [m["send_after"] - clock.now() for m in s.messages()] == [
        timedelta(0), timedelta(minutes=30), timedelta(minutes=60), timedelta(minutes=90)
    ]  # fmt: skip
    assert support.deliver(engine, clock, smtp) == 1
    clock.advance(timedelta(minutes=30))
    assert support.deliver(engine, clock, smtp) == 1  # ben, due at his throttled slot
    clock.advance(timedelta(minutes=30))
    assert launch.run_due(engine, now=clock.now()) == 1 + 2  # ended: cy and dee skipped
    c = manage.get(engine, workspace_id=s.ws, key="bf")
    assert (c.status, c.finished_at) == ("sent", clock.now())
    assert support.deliver(engine, clock, smtp) == 0
    report = manage.progress(engine, workspace_id=s.ws, key="bf").as_dict()
    assert (report["sent"], report["skipped"]) == (2, {"campaign_ended": 2})


def test_frozen_audience_is_fixed_at_schedule_time(engine: Engine, clock: SimulatedClock) -> None:
    s = support.shop(engine, clock)
    ana = s.person("ana")
    s.add_list("newsletter", [ana])
    data = support.definition(freeze_audience=True, schedule={"kind": "at", "at": support.at(clock, hours=1)})
    manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    manage.schedule(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert [(m["profile_id"], m["status"]) for m in s.messages()] == [(ana, "held")]
    s.add_list("newsletter", [s.person("late")])  # joins after the audience was frozen
    clock.advance(timedelta(hours=1))
    launch.run_due(engine, now=clock.now())
    assert [(m["profile_id"], m["status"]) for m in s.messages()] == [(ana, "queued")]


def test_bad_campaigns_name_the_field_and_queue_nothing(engine: Engine, clock: SimulatedClock) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [])
    s.add_list("full", [s.person("ana")])

    def refused(**changes: Any) -> list[str]:
        with pytest.raises(rules.Invalid) as caught:
            manage.create(engine, workspace_id=s.ws, data=support.definition(**changes), now=clock.now())
        return caught.value.messages()

    assert refused() == ["audience: resolves to no profiles (after exclusions): nothing to send"]
    full = {"include": {"lists": ["full"]}}
    assert refused(audience=full, schedule={"kind": "at", "at": support.at(clock, minutes=-1)}) == [
        "schedule.at: 2026-01-05T08:59:00+00:00 is in the past (now 2026-01-05T09:00:00+00:00)"
    ]
    assert refused(audience={"include": {"lists": ["nope"], "segments": ["gone"]}}) == [
        "audience.include.lists: no list 'nope' in this workspace",
        "audience.include.segments: no segment 'gone' in this workspace",
    ]
    [message] = refused(audience=full, template="no-such-template")
    assert message.startswith("template: 'no-such-template' does not render for profile ")
    assert manage.list_campaigns(engine, workspace_id=s.ws) == []
    assert s.messages() == []
    manage.create(engine, workspace_id=s.ws, data=support.definition(audience=full), now=clock.now())
    with pytest.raises(manage.Conflict, match="key: the workspace already has a campaign 'bf'"):
        manage.create(engine, workspace_id=s.ws, data=support.definition(audience=full), now=clock.now())
    other = support.shop(engine, clock)
    with pytest.raises(manage.CampaignNotFound):
        manage.get(engine, workspace_id=other.ws, key="bf")
    with pytest.raises(manage.CampaignNotFound):
        manage.cancel(engine, workspace_id=other.ws, key="bf", now=clock.now())
    with db.reading(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one() == 0


def test_calendar_lists_scheduled_campaigns_per_day(engine: Engine, clock: SimulatedClock) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person("ana")])
    for key, hours in (("a", 2), ("b", 26), ("c", 27), ("draft", 3)):
        manage.create(
            engine,
            workspace_id=s.ws,
            data=support.definition(key, schedule={"kind": "at", "at": support.at(clock, hours=hours)}),
            now=clock.now(),
        )
        if key != "draft":
            manage.schedule(engine, workspace_id=s.ws, key=key, now=clock.now())
    days = manage.calendar(engine, workspace_id=s.ws, start=clock.now(), end=clock.now() + timedelta(days=7))
    assert [(d["date"], [c["key"] for c in d["campaigns"]]) for d in days] == [
        ("2026-01-05", ["a"]),
        ("2026-01-06", ["b", "c"]),
    ]


def test_an_sms_over_the_workspace_segment_limit_is_refused(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person("ana", phone="+14155550101")])
    sms_settings.configure(engine, workspace_id=s.ws, changes={"max_segments": 2})
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "long.yaml").write_text("body: '{{ profile.first_name }} " + "x" * 400 + "'\n")
    (tmp_path / "sms" / "short.yaml").write_text("body: 'Hi {{ profile.first_name }}, 20% off today'\n")
    libs = content.Libraries(text=text_templates.TextLibrary(tmp_path))
    with pytest.raises(rules.Invalid) as caught:
        manage.create(
            engine,
            workspace_id=s.ws,
            data=support.definition(channel="sms", template="long"),
            now=clock.now(),
            libraries=libs,
        )
    [message] = caught.value.messages()
    assert message.startswith("template: 'long' does not render for profile ")
    assert message.endswith("sms template 'long': 3 segments, the limit is 2 (sms.max_segments)")
    assert manage.list_campaigns(engine, workspace_id=s.ws) == []
    ok = manage.create(
        engine, workspace_id=s.ws, data=support.definition(channel="sms", template="short"), now=clock.now(),
        libraries=libs,
    )  # fmt: skip
    assert (ok.channel, ok.status) == ("sms", "draft")


def test_the_worker_loop_launches_delivers_and_finishes(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person(n) for n in ("ana", "ben")])
    data = support.definition(schedule={"kind": "at", "at": support.at(clock, minutes=30)})
    manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    manage.schedule(engine, workspace_id=s.ws, key="bf", now=clock.now())
    worker = Worker(
        engine=engine, clock=clock, channel=smtp, link_secret=support.SECRET, public_url=support.PUBLIC
    )
    worker.run_until_idle()
    assert sink.messages() == [] and manage.get(engine, workspace_id=s.ws, key="bf").status == "scheduled"
    clock.advance(timedelta(minutes=30))
    worker.run_until_idle()
    assert sorted(str(m["To"]) for m in sink.messages()) == ["ana@example.org", "ben@example.org"]
    clock.advance(timedelta(seconds=worker.campaign_every.total_seconds()))
    worker.run_until_idle()
    assert manage.get(engine, workspace_id=s.ws, key="bf").status == "sent"


FLASH = """subject: 'Ends in {{ event.campaign.ends_at | countdown }}, {{ profile.first_name }}'
html: '<p>{{ event.campaign.name }}: {{ event.campaign.ends_at | countdown }} left.
  <a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ store.postal_address }}</p>'
"""


def test_a_flash_sale_email_counts_down_to_its_end(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel, tmp_path: Path
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person("ana")])
    (tmp_path / "flash.yaml").write_text(FLASH)
    library = email_templates.Library(tmp_path)
    data = support.definition(template="flash", ends_at=support.at(clock, hours=5))
    libs = content.Libraries(email=library)
    manage.create(engine, workspace_id=s.ws, data=data, now=clock.now(), libraries=libs)
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now(), libraries=libs)
    clock.advance(timedelta(hours=2))
    assert support.deliver(engine, clock, smtp, library=library) == 1
    [mail] = sink.messages()
    assert mail["Subject"] == "Ends in 3 hours, Ana"


def test_results_count_engagement_and_attributed_revenue(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    ana, ben = s.person("ana"), s.person("ben")
    s.add_list("newsletter", [ana, ben])
    manage.create(engine, workspace_id=s.ws, data=support.definition(), now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert support.deliver(engine, clock, smtp) == 2
    [ana_message] = [m for m in s.message_ids() if m[0] == ana]
    clock.advance(timedelta(hours=1))
    opened = CanonicalEvent(
        message_id="open-1", source="test", identity=Identity(profile_id=ana), time=clock.now(),
        name="Opened Email", properties={"message_id": ana_message[1]},
    )  # fmt: skip
    order = CanonicalEvent(
        message_id="order-1", source="test", identity=Identity(profile_id=ana), time=clock.now() + timedelta(hours=1),
        name="Placed Order", properties={"order_id": "o-1"}, value=Decimal("50.00"),
    )  # fmt: skip
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=s.ws, events=[opened, order], now=clock.now())
    clock.advance(timedelta(hours=2))
    process_pending(engine, clock=clock)
    assert reports.results(engine, workspace_id=s.ws, key="bf") == {
        "sent": 2, "delivered": 2, "opened": 1, "clicked": 0, "unsubscribed": 0, "bounced": 0,
        "complained": 0, "open_rate": 0.5, "click_rate": 0.0, "conversions": 1, "revenue": "50.00",
        "revenue_per_recipient": "25.00", "currency": "USD",
    }  # fmt: skip
