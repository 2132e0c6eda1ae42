"""Campaign subject lines, UTM tags and A/B tests on both databases, through the real delivery
(SMTP on loopback): the exact subjects and link queries at the sink, the deterministic even
split, the held rest, the automatic and the manual winner, bad definitions."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.campaigns import launch, manage, reports
from shopflow.cli import main as cli
from shopflow.domain import campaigns as rules
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.sink import Sink
from shopflow.store import db
from shopflow.store import workspaces as workspace_store
from shopflow.workers.events import process_pending
from tests.integration import campaigns_support as support

sink = support.sink  # fixtures
smtp = support.smtp


def _targets(mail: Any) -> list[str]:
    """The destinations of the email's tracked links (the `u` of each click URL)."""
    html = mail.get_body(("html",)).get_content()
    return [unquote(u) for u in re.findall(r'/t/c/[^"?]+\?u=([^"&]+)', html)]


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def _by_address(sink: Sink) -> dict[str, str]:
    return {str(m["To"]): str(m["Subject"]) for m in sink.messages()}


def _ab(**changes: Any) -> dict[str, Any]:
    test: dict[str, Any] = {
        "variants": [
            {"key": "a", "subject": "A: {{ profile.first_name }}, 20% off"},
            {"key": "b", "subject": "B: the sale is on"},
        ],
        "test_percent": 50,
        "window": "PT4H",
        "metric": "open",
        "winner": "auto",
    }
    test.update(changes)
    return test


def test_subject_and_utm_of_a_campaign_email(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person("ana")])
    data = support.definition(subject="{{ profile.first_name }}, 30% off until Monday")
    manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    assert support.deliver(engine, clock, smtp) == 1
    [mail] = sink.messages()
    assert mail["Subject"] == "Ana, 30% off until Monday"
    [shop_link] = _targets(mail)
    assert _query(shop_link) == {"utm_source": "shopflow", "utm_medium": "email", "utm_campaign": "bf"}

    s.add_list("vip", [s.person("ben")])
    data = support.definition(
        "cm", audience={"include": {"lists": ["vip"]}}, utm={"source": "newsletter", "campaign": "cyber-2026"}
    )
    manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="cm", now=clock.now())
    assert support.deliver(engine, clock, smtp) == 1
    mail = sink.messages()[1]
    assert mail["Subject"] == "Our seasonal sale is on at Example Store"  # the template's subject
    [shop_link] = _targets(mail)
    assert _query(shop_link) == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "cyber-2026",
    }


def _shop_of(engine: Engine, clock: SimulatedClock, n: int) -> tuple[support.Shop, list[int]]:
    s = support.shop(engine, clock)
    people = [s.person(f"p{i:02d}") for i in range(n)]
    s.add_list("newsletter", people)
    return s, people


def _split(campaign_id: int, people: list[int], keys: list[str], percent: int) -> dict[int, str | None]:
    """The expected assignment, computed here from the rule: the hash decides who is tested,
    the tested take the variants in turn (in profile id order)."""
    out: dict[int, str | None] = {}
    turn = 0
    for pid in sorted(people):
        if rules.ab_bucket(campaign_id, pid) < percent * 100:
            out[pid] = keys[turn % len(keys)]
            turn += 1
        else:
            out[pid] = None
    return out


def test_variants_are_deterministic_even_and_the_rest_held(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s, people = _shop_of(engine, clock, 30)
    test = _ab(
        variants=[{"key": "a", "subject": "A"}, {"key": "b", "subject": "B"}, {"key": "c", "subject": "C"}],
        test_percent=40,
    )
    c = manage.create(engine, workspace_id=s.ws, data=support.definition(ab=test), now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now(), batch=7)  # over 5 batches
    expected = _split(c.id, people, ["a", "b", "c"], 40)
    tested = [p for p, v in expected.items() if v is not None]
    counts = {k: sum(1 for v in expected.values() if v == k) for k in ("a", "b", "c")}
    assert len(tested) == 11 and counts == {"a": 4, "b": 4, "c": 3}  # 40 % of 30 by hash, even to one
    assert [(m["profile_id"], m["status"]) for m in s.messages()] == [
        (p, "queued" if expected[p] else "held") for p in sorted(people)
    ]
    assert manage.get(engine, workspace_id=s.ws, key="bf").ab_tested == 11
    assert support.deliver(engine, clock, smtp) == 11
    got = _by_address(sink)
    assert got == {f"p{people.index(p):02d}@example.org": str(expected[p]).upper() for p in tested}

    clock.advance(timedelta(hours=3, minutes=59))  # the window is not over: the rest waits
    launch.run_due(engine, now=clock.now())
    manage.pause(engine, workspace_id=s.ws, key="bf", now=clock.now())
    manage.resume(engine, workspace_id=s.ws, key="bf", now=clock.now())  # releases no rest row
    assert support.deliver(engine, clock, smtp) == 0
    assert len(sink.messages()) == 11
    assert sorted(m["status"] for m in s.messages()).count("held") == 19


def _record(engine: Engine, ws: str, events: list[CanonicalEvent], clock: SimulatedClock) -> None:
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=events, now=clock.now())


def test_an_automatic_winner_is_sent_to_the_rest(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s, people = _shop_of(engine, clock, 24)
    with db.transaction(engine) as conn:
        workspace_store.update_settings(
            conn, workspace_id=s.ws, changes={"experiments": {"confidence": 0.9, "min_conversions": 1}}
        )
    c = manage.create(engine, workspace_id=s.ws, data=support.definition(ab=_ab()), now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    expected = _split(c.id, people, ["a", "b"], 50)
    a = [p for p, v in expected.items() if v == "a"]
    b = [p for p, v in expected.items() if v == "b"]
    rest = [p for p, v in expected.items() if v is None]
    assert (len(a), len(b), len(rest)) == (5, 5, 14)
    assert support.deliver(engine, clock, smtp) == 10
    sent = {pid: mid for pid, mid in s.message_ids()}
    clock.advance(timedelta(hours=1))
    events: list[CanonicalEvent] = []
    # Every b recipient opens, one a recipient does; one of each orders.
    for i, pid in enumerate([*b, a[0]]):
        events.append(CanonicalEvent(
            message_id=f"open-{pid}", source="test", identity=Identity(profile_id=pid), time=clock.now(),
            name="Opened Email", properties={"message_id": sent[pid]},
        ))  # fmt: skip
        if pid in (b[0], a[0]):
            events.append(CanonicalEvent(
                message_id=f"order-{i}", source="test", identity=Identity(profile_id=pid),
                time=clock.now() + timedelta(minutes=30), name="Placed Order",
                properties={"order_id": f"o-{i}"}, value=Decimal("40.00"),
            ))  # fmt: skip
    _record(engine, s.ws, events, clock)
    clock.advance(timedelta(hours=3))  # the window (PT4H from the launch) is over
    process_pending(engine, clock=clock)
    assert launch.run_due(engine, now=clock.now()) >= 1 + 14
    c = manage.get(engine, workspace_id=s.ws, key="bf")
    assert (c.winner, c.winner_reason) == ("b", "significant")
    assert support.deliver(engine, clock, smtp) == 14
    subjects = _by_address(sink)
    assert {subjects[f"p{people.index(p):02d}@example.org"] for p in rest} == {"B: the sale is on"}
    assert subjects[f"p{people.index(a[0]):02d}@example.org"] == "A: P" + f"{people.index(a[0]):02d}, 20% off"

    found = reports.results(engine, workspace_id=s.ws, key="bf")["variants"]
    assert (found["winner"], found["winner_reason"], found["verdict"]["status"]) == (
        "b",
        "significant",
        "winner",
    )
    assert [
        (v["key"], v["sent"], v["opened"], v["conversions"], v["revenue"]) for v in found["variants"]
    ] == [
        ("a", 5, 1, 1, "40.00"),
        ("b", 5, 5, 1, "40.00"),
    ]
    assert found["rest"] == {
        "variant": "b", "sent": 14, "opened": 0, "clicked": 0, "conversions": 0, "revenue": "0.00"
    }  # fmt: skip
    launch.run_due(engine, now=clock.now())
    assert manage.get(engine, workspace_id=s.ws, key="bf").status == "sent"


def test_without_enough_data_the_control_goes_to_the_rest(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s, people = _shop_of(engine, clock, 10)
    c = manage.create(
        engine, workspace_id=s.ws, data=support.definition(ab=_ab(test_percent=30)), now=clock.now()
    )
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    expected = _split(c.id, people, ["a", "b"], 30)
    tested = sum(1 for v in expected.values() if v)
    assert support.deliver(engine, clock, smtp) == tested
    clock.advance(timedelta(hours=4))
    launch.run_due(engine, now=clock.now())
    c = manage.get(engine, workspace_id=s.ws, key="bf")
    assert (c.winner, c.winner_reason) == ("a", "not_significant")
    assert support.deliver(engine, clock, smtp) == 10 - tested
    rest = {f"p{people.index(p):02d}@example.org" for p, v in expected.items() if v is None}
    assert {k: v for k, v in _by_address(sink).items() if k in rest} == {
        k: f"A: P{k[1:3]}, 20% off" for k in rest
    }


def test_a_manual_winner_waits_for_the_pick(
    engine: Engine, clock: SimulatedClock, sink: Sink, smtp: SmtpChannel
) -> None:
    s, people = _shop_of(engine, clock, 12)
    data = support.definition(ab=_ab(winner="manual", window="PT1H"))
    c = manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    manage.send(engine, workspace_id=s.ws, key="bf", now=clock.now())
    expected = _split(c.id, people, ["a", "b"], 50)
    tested = sum(1 for v in expected.values() if v)
    assert support.deliver(engine, clock, smtp) == tested
    clock.advance(timedelta(hours=5))
    launch.run_due(engine, now=clock.now())
    assert manage.get(engine, workspace_id=s.ws, key="bf").winner is None
    assert support.deliver(engine, clock, smtp) == 0
    with pytest.raises(manage.Conflict, match="variant: expected one of a, b, got 'z'"):
        manage.pick_winner(engine, workspace_id=s.ws, key="bf", body={"variant": "z"}, now=clock.now())
    c = manage.pick_winner(engine, workspace_id=s.ws, key="bf", body={"variant": "b"}, now=clock.now())
    assert (c.winner, c.winner_reason) == ("b", "manual")
    with pytest.raises(manage.Conflict, match="winner: already 'b'"):
        manage.pick_winner(engine, workspace_id=s.ws, key="bf", body={"variant": "a"}, now=clock.now())
    assert support.deliver(engine, clock, smtp) == 12 - tested
    rest = {f"p{people.index(p):02d}@example.org" for p, v in expected.items() if v is None}
    assert {v for k, v in _by_address(sink).items() if k in rest} == {"B: the sale is on"}


@pytest.mark.parametrize(
    ("ab", "problem"),
    [
        ("yes", "ab: expected an object"),
        (
            {**_ab(), "variants": [{"key": "a", "subject": "A"}]},
            "ab.variants: expected a list of 2 to 4 variants, got 1",
        ),
        (
            {**_ab(), "variants": [{"key": "a", "subject": "A"}] * 2},
            "ab.variants[1].key: 'a' is already the key",
        ),
        (
            {**_ab(), "variants": [{"key": "a", "subject": "A"}, {"key": "b"}]},
            "ab.variants[1]: expected a subject or a template",
        ),
        (
            {**_ab(), "variants": [{"key": "a", "subject": "A"}, {"key": "b", "template": "nope"}]},
            "ab.variants[1].template: 'nope' does not render",
        ),
        (
            {**_ab(), "variants": [{"key": "a", "subject": "{% if %}"}, {"key": "b", "subject": "B"}]},
            "ab.variants[0].subject: '{% if %}' does not render",
        ),
        (
            {
                **_ab(),
                "variants": [{"key": "a", "subject": "{{ profile.x | nope }}"}, {"key": "b", "subject": "B"}],
            },
            "ab.variants[0].subject: '{{ profile.x | nope }}' does not render",
        ),
        ({**_ab(), "test_percent": 100}, "ab.test_percent: expected a whole number from 1 to 99, got 100"),
        ({**_ab(), "test_percent": True}, "ab.test_percent: expected a whole number from 1 to 99, got True"),
        ({**_ab(), "window": "4 hours"}, "ab.window: expected an ISO 8601 duration"),
        ({**_ab(), "window": "P90D"}, "ab.window: expected an ISO 8601 duration"),
        (
            {**_ab(), "metric": "ctr"},
            "ab.metric: expected one of open, click, placed_order, revenue_per_recipient, got 'ctr'",
        ),
        ({**_ab(), "winner": "first"}, "ab.winner: expected one of auto, manual, got 'first'"),
        ({**_ab(), "seed": 1}, "ab.seed: unknown field"),
    ],
)
def test_bad_ab_definitions_name_the_field_and_queue_nothing(
    engine: Engine, clock: SimulatedClock, ab: Any, problem: str
) -> None:
    s, _people = _shop_of(engine, clock, 2)
    with pytest.raises(rules.Invalid) as raised:
        manage.create(engine, workspace_id=s.ws, data=support.definition(ab=ab), now=clock.now())
    assert any(m.startswith(problem) for m in raised.value.messages()), raised.value.messages()
    assert manage.list_campaigns(engine, workspace_id=s.ws) == [] and s.messages() == []


def test_a_subject_that_does_not_render_is_refused(engine: Engine, clock: SimulatedClock) -> None:
    s, _people = _shop_of(engine, clock, 1)
    with pytest.raises(rules.Invalid) as raised:
        manage.create(
            engine,
            workspace_id=s.ws,
            data=support.definition(subject="Hi {{ profile.first_name | nope }}"),
            now=clock.now(),
        )
    [message] = raised.value.messages()
    assert message.startswith("subject: 'Hi {{ profile.first_name | nope }}' does not render for profile")
    assert s.messages() == []


def test_bad_utm_names_the_field(engine: Engine, clock: SimulatedClock) -> None:
    s, _people = _shop_of(engine, clock, 1)
    with pytest.raises(rules.Invalid) as raised:
        manage.create(
            engine,
            workspace_id=s.ws,
            data=support.definition(utm={"medium": "e mail", "term": "x"}),
            now=clock.now(),
        )
    assert raised.value.messages() == [
        "utm.term: unknown field (expected source, medium, campaign)",
        "utm.medium: expected letters, digits, _ . + - (1 to 100), got 'e mail'",
    ]


def _server(engine: Engine, clock: SimulatedClock, server_factory: Any) -> str:
    return str(server_factory(create_app(config.load(environ={}), engine=engine, clock=clock)))


def test_ab_over_http_winner_report_and_bad_input(
    engine: Engine, clock: SimulatedClock, server_factory: Any, sink: Sink, smtp: SmtpChannel
) -> None:
    s, people = _shop_of(engine, clock, 12)
    url = f"{_server(engine, clock, server_factory)}/api/v1/campaigns"
    auth = {"Authorization": f"Bearer {s.private_key}"}
    bad = httpx.post(
        url, json=support.definition(ab={**_ab(), "test_percent": 0, "metric": "ctr"}), headers=auth
    )
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["ab.test_percent", "ab.metric"]
    assert httpx.get(url, headers=auth).json() == {"campaigns": []} and s.messages() == []

    created = httpx.post(url, json=support.definition(ab=_ab(winner="manual")), headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["ab"]["winner"] == "manual" and created.json()["winner"] is None
    early = httpx.post(f"{url}/bf/winner", json={"variant": "b"}, headers=auth)
    assert (early.status_code, early.json()["error"]) == (
        409, "status: a draft campaign cannot take a winner (only sending)"
    )  # fmt: skip
    assert httpx.post(f"{url}/bf/send", headers=auth).status_code == 202
    expected = _split(manage.get(engine, workspace_id=s.ws, key="bf").id, people, ["a", "b"], 50)
    tested = sum(1 for v in expected.values() if v)
    assert support.deliver(engine, clock, smtp) == tested
    for body, status, error in [
        ({"variant": "z"}, 409, "variant: expected one of a, b, got 'z'"),
        ({"variant": 7}, 400, "variant: expected a variant key, got 7"),
        ({"variant": "b", "also": 1}, 400, "also: unknown field (expected variant)"),
        (None, 400, "variant: expected a variant key, got None"),
        ([], 400, None),
    ]:
        answer = httpx.post(f"{url}/bf/winner", json=body, headers=auth)
        assert answer.status_code == status, answer.text
        if error is not None:
            assert answer.json()["error"] == error
    huge = httpx.post(f"{url}/bf/winner", content=b'{"variant": "' + b"b" * 70_000 + b'"}', headers=auth)
    assert huge.status_code == 413
    assert httpx.post(f"{url}/nope/winner", json={"variant": "b"}, headers=auth).status_code == 404
    picked = httpx.post(f"{url}/bf/winner", json={"variant": "b"}, headers=auth)
    assert picked.status_code == 200, picked.text
    assert (picked.json()["winner"], picked.json()["winner_reason"]) == ("b", "manual")
    assert support.deliver(engine, clock, smtp) == 12 - tested
    report = httpx.get(f"{url}/bf/report", headers=auth).json()["results"]["variants"]
    counts = {k: sum(1 for v in expected.values() if v == k) for k in ("a", "b")}
    assert [(v["key"], v["sent"]) for v in report["variants"]] == [("a", counts["a"]), ("b", counts["b"])]
    assert (report["winner"], report["verdict"]["status"], report["rest"]["sent"]) == (
        "b", "not_enough_data", 12 - tested
    )  # fmt: skip


def test_ab_on_the_command_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    try:
        s, _people = _shop_of(engine, SimulatedClock(testing.T0), 6)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(support.definition(ab={**_ab(), "window": "soon"})))
        assert cli.main(["campaigns", "create", str(bad), "--workspace", s.ws]) == 2
        assert "ab.window: expected an ISO 8601 duration" in capsys.readouterr().err
        good = tmp_path / "good.json"
        good.write_text(json.dumps(support.definition(ab=_ab(winner="manual"))))
        assert cli.main(["campaigns", "create", str(good), "--workspace", s.ws]) == 0
        assert cli.main(["campaigns", "send", "bf", "--workspace", s.ws, "--no-progress"]) == 0
        capsys.readouterr()
        assert cli.main(["campaigns", "pick-winner", "bf", "z", "--workspace", s.ws]) == 2
        assert "variant: expected one of a, b, got 'z'" in capsys.readouterr().err
        assert cli.main(["campaigns", "pick-winner", "bf", "a", "--workspace", s.ws]) == 0
        assert capsys.readouterr().out == "bf: winner a sent to the rest\n"
        assert cli.main(["campaigns", "report", "bf", "--workspace", s.ws]) == 0
        out = capsys.readouterr().out
        assert "A/B test on open: winner a (manual); verdict not_enough_data" in out
        assert "\n  a: 0 sent, 0 opened, 0 clicked, 0 orders, 0.00 USD" in out
    finally:
        engine.dispose()


def test_an_ab_test_that_cannot_hold_is_refused(engine: Engine, clock: SimulatedClock) -> None:
    s, _people = _shop_of(engine, clock, 1)
    data = support.definition(channel="sms", ab=_ab(), freeze_audience=True)
    with pytest.raises(rules.Invalid) as raised:
        manage.create(engine, workspace_id=s.ws, data=data, now=clock.now())
    assert raised.value.messages() == [
        "ab.variants[0].subject: only an email has a subject line",
        "ab.variants[1].subject: only an email has a subject line",
        "freeze_audience: an A/B test resolves its audience at launch: expected false",
    ]
    assert manage.list_campaigns(engine, workspace_id=s.ws) == [] and s.messages() == []
