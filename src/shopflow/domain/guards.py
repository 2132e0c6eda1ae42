"""Every reason not to send a message ("never" or "not now"), decided in one place.

A decision is one of: send; skip with a reason (recorded on the message, shown on the profile's
timeline); or defer until a time with a reason (quiet hours, the workspace's daily limit) — the
message goes back to the queue and every guard runs again then.

The rules are pure: messaging.delivery.gate reads a batch's facts (store.guard_facts, a few GROUP
BY queries per batch) into `BatchFacts`, and `Gate.decide` decides each message from them.
Transactional messages bypass consent, preferences, caps, smart sending and quiet hours, but
never a suppression (hard bounce, complaint) nor an address that cannot receive mail: sending to
those harms every other recipient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

# --- reasons (stable strings: reports and the timeline group by them) ---------------------------
NO_PROFILE = "no_profile"
NO_ADDRESS = "no_address"
SUPPRESSED = "suppressed"
UNDELIVERABLE_ADDRESS = "undeliverable_address"  # invalid syntax or a reserved domain: cannot arrive
FAKE_ADDRESS = "fake_address"  # test@test.com, asdfgh@...: marketing only lands in spam traps
ROLE_ADDRESS = "role_address"  # info@, sales@: a team that never subscribed
UNSUBSCRIBED = "unsubscribed"
NO_CONSENT = "no_consent"
PAUSED = "paused"
TOPIC_OPT_OUT = "topic_opt_out"
FREQUENCY_PREFERENCE = "frequency_preference"
SMART_SENDING = "smart_sending"
FREQUENCY_CAP = "frequency_cap"
FREQUENCY_CAP_UNENGAGED = "frequency_cap_unengaged"
FATIGUE = "fatigue"
QUIET_HOURS = "quiet_hours"  # a deferral
WORKSPACE_DAILY_LIMIT = "workspace_daily_limit"  # a deferral
WARMUP = "warmup"  # a deferral: the sender domain's warm-up ramp is used up for today

SUBSCRIBED = "subscribed"
NEVER_SUBSCRIBED = "never_subscribed"

# Defaults (each one a workspace setting of the same name).
DEFAULTS: dict[str, Any] = {
    "smart_sending_hours_email": 16,
    "smart_sending_hours_sms": 24,
    "smart_sending_hours_push": 24,
    "frequency_cap_email_day": 1,
    "frequency_cap_email_week": 3,
    "frequency_cap_engaged_day": 2,
    "frequency_cap_engaged_week": 5,
    "frequency_cap_unengaged_every_days": 2,  # at most one in this many days
    "frequency_cap_unengaged_week": 2,
    "engaged_open_rate": 0.40,
    "unengaged_open_rate": 0.10,
    "engagement_min_emails": 5,  # fewer emails in 30 days than this: too little to judge
    "fatigue_drop": 0.30,
    "quiet_hours_sms": "21:00-08:00",  # TCPA: 47 CFR 64.1200(c)(1) allows 08:00-21:00 local
    "quiet_hours_push": "",
    "quiet_hours_email": "",
    "daily_limit_email": None,
    "daily_limit_sms": None,
    "daily_limit_push": None,
    # Marketing to shared mailboxes (info@, sales@): off, as Klaviyo does by default; they
    # complain more and engage less (M3AAWG Sender BCP).
    "send_to_role_addresses": False,
    # RFC 2606 / 6761 names (example.com, *.test) cannot receive mail. None: refused, unless the
    # store's own from_email is at such a name too (a test or demo store, whose mail goes to a
    # sink; a live store cannot send from one). true / false decide outright.
    "deliver_to_reserved_domains": None,
}


# profiles.email_status values, as ingest.hygiene writes them at intake.
INVALID_SYNTAX = "invalid_syntax"
RESERVED_DOMAIN = "reserved_domain"
FAKE = "fake"


class Message(Protocol):
    """What the gate reads of a claimed message (store.messages.ClaimedMessage)."""

    @property
    def profile_id(self) -> int: ...

    @property
    def channel(self) -> str: ...

    @property
    def transactional(self) -> bool: ...

    @property
    def context(self) -> Mapping[str, Any]: ...


# --- a batch's facts (read by store.guard_facts) ----------------------------------------------


@dataclass
class SendHistory:
    """One profile's marketing sends on one channel (counts by window ending now)."""

    last_sent_at: datetime | None = None
    day: int = 0
    two_days: int = 0
    week: int = 0
    month: int = 0
    previous_month: int = 0  # sent 30..60 days ago


@dataclass
class Engagement:
    """Distinct messages opened, in the last 30 days and the 30 before."""

    opened_month: int = 0
    opened_previous_month: int = 0


@dataclass(frozen=True)
class Preference:
    topics_off: frozenset[str] = frozenset()
    frequency: str | None = None
    paused_until: datetime | None = None


@dataclass(frozen=True)
class Contact:
    timezone: str | None
    phone: str | None


@dataclass
class BatchFacts:
    history: dict[tuple[int, str], SendHistory] = field(default_factory=dict)
    engagement: dict[int, Engagement] = field(default_factory=dict)
    preferences: dict[int, Preference] = field(default_factory=dict)
    contacts: dict[int, Contact] = field(default_factory=dict)
    # Marketing messages this workspace sent since the start of the current UTC day, per channel.
    workspace_sent_today: dict[str, int] = field(default_factory=dict)


def setting(settings: Mapping[str, Any], name: str) -> Any:
    """A workspace setting, else its default (None in the settings also means the default)."""
    value = settings.get(name)
    return DEFAULTS.get(name) if value is None else value


@dataclass(frozen=True)
class Facts:
    """What delivery knows about one message's recipient at send time."""

    channel: str
    transactional: bool
    profile_exists: bool
    address: str | None  # email address (or phone for SMS, endpoint for push)
    consent: str  # subscribed | unsubscribed | never_subscribed
    suppression: str | None  # the suppression's reason, if any
    # Email only: the address's hygiene (store column profiles.email_status, email_role).
    email_status: str | None = None  # valid | invalid_syntax | reserved_domain | fake; None: unchecked
    email_role: bool = False


@dataclass(frozen=True)
class Decision:
    reason: str | None = None  # None: send now
    defer_until: datetime | None = None  # set: not now, try again at this time

    @property
    def send(self) -> bool:
        return self.reason is None

    @property
    def deferred(self) -> bool:
        return self.defer_until is not None


SEND = Decision()


def marketing_requires_subscribed(workspace_settings: Mapping[str, Any], channel: str = "email") -> bool:
    """Email: a setting (default yes). SMS: always (TCPA needs express written consent).
    Push: no, by default: the browser's permission prompt is the opt-in."""
    if channel == "sms":
        return True
    if channel == "push":
        return bool(workspace_settings.get("push_marketing_requires_subscribed", False))
    return bool(workspace_settings.get("email_marketing_requires_subscribed", True))


def check_settings(
    workspace_settings: Mapping[str, Any], channel: str, *, reserved_domains_allowed: bool = False
) -> dict[str, bool]:
    """The workspace settings `check` takes, as its keyword arguments. `reserved_domains_allowed`:
    whether mail may go to RFC 2606 / 6761 names (messaging.delivery.gate decides it from the
    setting and the store's own from address)."""
    return {
        "requires_subscribed": marketing_requires_subscribed(workspace_settings, channel),
        "send_to_role_addresses": bool(setting(workspace_settings, "send_to_role_addresses")),
        "deliver_to_reserved_domains": reserved_domains_allowed,
    }


def check(
    facts: Facts,
    *,
    requires_subscribed: bool = True,
    send_to_role_addresses: bool = False,
    deliver_to_reserved_domains: bool = False,
) -> str | None:
    """The permanent reason this message must not be sent (suppression, address, consent), or None.

    Order matters only for which reason is recorded: the most permanent one wins. A suppression
    or an address that cannot receive mail blocks every message, transactional included; a fake
    or role address and consent govern only marketing (CAN-SPAM and GDPR exempt transactional
    mail, e.g. an order receipt).
    """
    if not facts.profile_exists:
        return NO_PROFILE
    if not facts.address:
        return NO_ADDRESS
    if facts.suppression is not None:
        return SUPPRESSED
    email = facts.channel == "email"
    if email and (
        facts.email_status == INVALID_SYNTAX
        or (facts.email_status == RESERVED_DOMAIN and not deliver_to_reserved_domains)
    ):
        return UNDELIVERABLE_ADDRESS
    if facts.transactional:
        return None
    if email and facts.email_status == FAKE:
        return FAKE_ADDRESS
    if email and facts.email_role and not send_to_role_addresses:
        return ROLE_ADDRESS
    if facts.consent == UNSUBSCRIBED:
        return UNSUBSCRIBED
    if facts.consent == SUBSCRIBED:
        return None
    if facts.consent == NEVER_SUBSCRIBED and not requires_subscribed:
        return None
    return NO_CONSENT


# --- quiet hours ---------------------------------------------------------------------------------


def parse_window(text: str | None) -> tuple[time, time] | None:
    """ "21:00-08:00" -> (21:00, 08:00); empty -> None. Raises ValueError naming the value."""
    if not text:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in str(text).split("-"))
    except ValueError:
        raise ValueError(f"quiet hours: expected 'HH:MM-HH:MM', got {text!r}") from None
    return None if start == end else (start, end)


def _in_window(local: time, window: tuple[time, time]) -> bool:
    start, end = window
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight


def _window_end(now: datetime, zone: ZoneInfo, window: tuple[time, time]) -> datetime:
    local = now.astimezone(zone)
    end = window[1]
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def quiet_until(
    now: datetime, zones: Iterable[ZoneInfo], window: tuple[time, time] | None
) -> datetime | None:
    """When quiet hours end for a recipient, or None if `now` is outside them in every zone.

    A number whose region spans several zones is treated by the strictest: allowed only when it
    is outside quiet hours in all of them.
    """
    zone_list = list(zones)
    if window is None or not zone_list:
        return None
    at = now
    for _ in range(4):  # zones far apart may need more than one step; give up after a few
        quiet = [z for z in zone_list if _in_window(at.astimezone(z).time(), window)]
        if not quiet:
            return None if at == now else at
        at = max(_window_end(at, z, window) for z in quiet)
    return at


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def recipient_zones(timezone: str | None, phone: str | None, fallback: str | None) -> list[ZoneInfo]:
    """The profile's zone; else the phone number's region's zones; else the store's zone."""
    zone = _zone(timezone)
    if zone is not None:
        return [zone]
    if phone:
        try:
            number = phonenumbers.parse(phone, None)
            names = [n for n in phone_timezone.time_zones_for_number(number) if n != "Etc/Unknown"]
        except phonenumbers.NumberParseException:
            names = []
        zones = [z for z in (_zone(n) for n in names) if z is not None]
        if zones:
            return zones
    zone = _zone(fallback)
    return [zone if zone is not None else ZoneInfo("UTC")]


# --- the gate --------------------------------------------------------------------------------


@dataclass
class Gate:
    """Decides one workspace's batch. Counts what it lets through, so two messages to the same
    person in one batch respect the same smart-sending window and caps."""

    settings: Mapping[str, Any]
    facts: BatchFacts
    now: datetime
    # Marketing emails the sender domain may still send today under its warm-up ramp (None: no limit).
    warmup_left: int | None = None
    # Mail to RFC 2606 / 6761 names allowed (messaging.delivery.gate: the setting, else the store's
    # own from address at such a name).
    reserved_domains_allowed: bool = False
    _windows: dict[str, tuple[time, time] | None] = field(default_factory=dict)

    def decide(
        self,
        msg: Message,
        facts: Facts,
        *,
        profile_id: int | None = None,
        reserve: bool = True,
    ) -> Decision:
        """profile_id: the surviving profile after merges (defaults to the message's).

        reserve: count an allowed marketing message at once, so later messages of the batch see
        it. A caller that can still fail before sending (a template error) passes False and calls
        `record_send` once the message is ready to go.
        """
        channel = msg.channel
        reason = check(
            facts,
            **check_settings(self.settings, channel, reserved_domains_allowed=self.reserved_domains_allowed),
        )
        if reason is not None:
            return Decision(reason)
        if msg.transactional:
            return SEND
        pid = msg.profile_id if profile_id is None else profile_id
        history = self.facts.history.setdefault((pid, channel), SendHistory())
        decision = (
            self._preferences(msg, pid, history)
            or self._smart_sending(msg, history)
            or self._caps(channel, pid, history)
            or self._daily_limit(channel)
            or self._warmup(channel)
            or self._quiet_hours(channel, pid)
        )
        if decision is not None:
            return decision
        if reserve:
            self._count(channel, history)
        return SEND

    def record_send(self, msg: Message, *, profile_id: int | None = None) -> None:
        """Count a message about to be sent, so the rest of the batch sees it (marketing only)."""
        if msg.transactional:
            return
        pid = msg.profile_id if profile_id is None else profile_id
        history = self.facts.history.setdefault((pid, msg.channel), SendHistory())
        self._count(msg.channel, history)

    def _preferences(self, msg: Message, pid: int, history: SendHistory) -> Decision | None:
        # A pause and a topic opt-out are about the person, not the inbox: they hold for every
        # channel. The frequency choice ("at most weekly") counts emails, so it governs email.
        pref = self.facts.preferences.get(pid)
        if pref is None:
            return None
        if pref.paused_until is not None and pref.paused_until > self.now:
            return Decision(PAUSED)
        topic = msg.context.get("topic")
        if isinstance(topic, str) and topic in pref.topics_off:
            return Decision(TOPIC_OPT_OUT)
        if msg.channel != "email":
            return None
        sent = {"daily": history.day, "weekly": history.week, "monthly": history.month}
        if pref.frequency in sent and sent[pref.frequency] >= 1:
            return Decision(FREQUENCY_PREFERENCE)
        return None

    def _smart_sending(self, msg: Message, history: SendHistory) -> Decision | None:
        # A flow message may opt out (context smart_sending: false), e.g. an order follow-up.
        if msg.context.get("smart_sending") is False or history.last_sent_at is None:
            return None
        hours = setting(self.settings, f"smart_sending_hours_{msg.channel}")
        if not hours:
            return None
        if self.now - history.last_sent_at < timedelta(hours=float(hours)):
            return Decision(SMART_SENDING)
        return None

    def tier(self, pid: int) -> str:
        """engaged | normal | unengaged | fatigued, from the last 60 days of sends and opens."""
        s = self.settings
        history = self.facts.history.get((pid, "email"), SendHistory())
        opens = self.facts.engagement.get(pid, Engagement())
        minimum = int(setting(s, "engagement_min_emails"))
        if history.month < minimum:
            return "normal"
        rate = min(1.0, opens.opened_month / history.month)
        if history.previous_month >= minimum:
            before = min(1.0, opens.opened_previous_month / history.previous_month)
            if before > 0 and rate <= before * (1 - float(setting(s, "fatigue_drop"))):
                return "fatigued"
        if rate > float(setting(s, "engaged_open_rate")):
            return "engaged"
        if rate < float(setting(s, "unengaged_open_rate")):
            return "unengaged"
        return "normal"

    def _caps(self, channel: str, pid: int, history: SendHistory) -> Decision | None:
        if channel != "email":
            return None
        s = self.settings
        tier = self.tier(pid)
        if tier in ("unengaged", "fatigued"):
            every = int(setting(s, "frequency_cap_unengaged_every_days"))
            recent = history.two_days if every == 2 else (history.day if every <= 1 else history.week)
            if recent >= 1 or history.week >= int(setting(s, "frequency_cap_unengaged_week")):
                return Decision(FATIGUE if tier == "fatigued" else FREQUENCY_CAP_UNENGAGED)
            return None
        prefix = "frequency_cap_engaged" if tier == "engaged" else "frequency_cap_email"
        if history.day >= int(setting(s, f"{prefix}_day")) or history.week >= int(
            setting(s, f"{prefix}_week")
        ):
            return Decision(FREQUENCY_CAP)
        return None

    def _daily_limit(self, channel: str) -> Decision | None:
        limit = setting(self.settings, f"daily_limit_{channel}")
        if limit is None or self.facts.workspace_sent_today.get(channel, 0) < int(limit):
            return None
        return Decision(WORKSPACE_DAILY_LIMIT, defer_until=self._tomorrow())

    def _tomorrow(self) -> datetime:
        return self.now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)

    def _warmup(self, channel: str) -> Decision | None:
        # A new sender domain ramps its daily volume (domain.warmup); marketing waits for tomorrow.
        if channel != "email" or self.warmup_left is None or self.warmup_left > 0:
            return None
        return Decision(WARMUP, defer_until=self._tomorrow())

    def _quiet_hours(self, channel: str, pid: int) -> Decision | None:
        if channel not in self._windows:
            self._windows[channel] = parse_window(setting(self.settings, f"quiet_hours_{channel}"))
        window = self._windows[channel]
        if window is None:
            return None
        contact = self.facts.contacts.get(pid)
        zones = recipient_zones(
            contact.timezone if contact else None,
            contact.phone if contact else None,
            str(self.settings.get("timezone") or "UTC"),
        )
        until = quiet_until(self.now, zones, window)
        return None if until is None else Decision(QUIET_HOURS, defer_until=until)

    def _count(self, channel: str, history: SendHistory) -> None:
        history.last_sent_at = self.now
        history.day += 1
        history.two_days += 1
        history.week += 1
        history.month += 1
        self.facts.workspace_sent_today[channel] = self.facts.workspace_sent_today.get(channel, 0) + 1
        if channel == "email" and self.warmup_left is not None:
            self.warmup_left -= 1
