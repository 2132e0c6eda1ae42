"""Address hygiene at intake: syntax (`email-validator`, no DNS), obvious fakes, role addresses.

Mail to a fake address bounces or, worse, lands in a spam trap; mail to a role address (info@,
sales@) reaches a team that never subscribed and complains. Neither is refused here: ingest keeps
the data and flags it, and the sender decides (M3AAWG Sender Best Common Practices §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import email_validator

VALID = "valid"
INVALID_SYNTAX = "invalid_syntax"
RESERVED_DOMAIN = "reserved_domain"
FAKE = "fake"

# RFC 2606 / RFC 6761 names that can never receive mail, beyond the ones email-validator refuses.
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org", "example.edu"})
_RESERVED_SUFFIXES = (".test", ".invalid", ".example", ".localhost", ".local", ".example.com")
_RESERVED_TLDS = frozenset(s[1:] for s in _RESERVED_SUFFIXES if s.count(".") == 1)
# Placeholders people type into a form to get past it.
_FAKE_LOCALS = frozenset(
    {"test", "testing", "tester", "asdf", "asd", "qwerty", "fake", "none", "nobody", "noemail", "no-email",
     "null", "abc", "abcd", "xxx", "xyz", "aaa", "foo", "bar", "foobar", "sample", "dummy", "user", "email",
     "me", "a", "123", "1234", "12345", "123456", "na", "n.a", "nomail", "spam", "junk"}
)  # fmt: skip
_FAKE_DOMAINS = frozenset(
    {"test.com", "testing.com", "asdf.com", "asd.com", "qwerty.com", "fake.com", "abc.com", "xyz.com",
     "foo.com", "bar.com", "email.com.com", "none.com", "nowhere.com", "noemail.com", "mailinator.com",
     "sharklasers.com", "guerrillamail.com", "10minutemail.com", "yopmail.com", "trashmail.com"}
)  # fmt: skip
# Shared mailboxes (RFC 2142 names and the usual shop ones).
ROLE_LOCALS = frozenset(
    {"abuse", "admin", "administrator", "billing", "contact", "customerservice", "enquiries", "help",
     "hello", "hostmaster", "info", "inquiries", "mail", "mailer-daemon", "marketing", "newsletter",
     "no-reply", "noc", "noreply", "do-not-reply", "donotreply", "office", "orders", "postmaster",
     "privacy", "root", "sales", "security", "shop", "store", "support", "team", "webmaster", "www"}
)  # fmt: skip
# Rows of the keyboard: a local part that is a run along one of them is a mash ("asdfgh", "qwerty").
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890")
_REPEATED = re.compile(r"^(.)\1{2,}$")  # aaa, xxxx, 1111


@dataclass(frozen=True)
class AddressCheck:
    valid: bool  # syntactically deliverable (not a fake or reserved name either)
    normalised: str | None  # the address as stored (domain lowercased, IDN as Unicode); None if invalid
    reason: str | None  # invalid_syntax | reserved_domain | fake, or None
    role: bool  # a shared mailbox such as info@ or sales@
    detail: str | None = None  # email-validator's explanation of a syntax error


def _is_mash(local: str) -> bool:
    letters = re.sub(r"[^a-z0-9]", "", local)
    if len(letters) < 4:
        return False
    if _REPEATED.match(letters):
        return True
    return any(letters in row or letters in row[::-1] for row in _ROWS)


def _domain_is_fake(domain: str) -> bool:
    if domain in _FAKE_DOMAINS:
        return True
    name = domain.split(".", maxsplit=1)[0]
    return _is_mash(name) and len(name) >= 4


def is_reserved_domain(domain: str) -> bool:
    """An RFC 2606 / RFC 6761 name (example.com, shop.example, x.test): no mail arrives there."""
    name = domain.strip().lower().rstrip(".")
    return name in _RESERVED_DOMAINS or name.endswith(_RESERVED_SUFFIXES) or name in _RESERVED_TLDS


def check_address(address: str) -> AddressCheck:
    """Classify one address; never raises and never looks anything up on the network."""
    try:
        result = email_validator.validate_email(address.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        text = str(exc)
        reason = RESERVED_DOMAIN if "special-use or reserved" in text else INVALID_SYNTAX
        return AddressCheck(valid=False, normalised=None, reason=reason, role=False, detail=text)
    normalised = str(result.normalized)
    local = str(result.local_part).lower()
    domain = str(result.ascii_domain).lower()
    role = local.split("+", 1)[0] in ROLE_LOCALS
    if is_reserved_domain(domain):
        return AddressCheck(valid=False, normalised=normalised, reason=RESERVED_DOMAIN, role=role)
    base = local.split("+", 1)[0]
    if base in _FAKE_LOCALS and (domain in _FAKE_DOMAINS or domain.split(".")[0] == base):
        # test@test.com, asdf@asdf.com: the same placeholder on both sides of the @.
        return AddressCheck(valid=False, normalised=normalised, reason=FAKE, role=role)
    if _domain_is_fake(domain) or _is_mash(base):
        return AddressCheck(valid=False, normalised=normalised, reason=FAKE, role=role)
    return AddressCheck(valid=True, normalised=normalised, reason=None, role=role)


def status(check: AddressCheck) -> str:
    """The profile's `email_status` column: valid | invalid_syntax | reserved_domain | fake."""
    return check.reason or VALID


def flags(check: AddressCheck) -> list[str]:
    """The address's flags as one list (reason, then "role"): [] when clean."""
    out = [check.reason] if check.reason else []
    if check.role:
        out.append("role")
    return out
