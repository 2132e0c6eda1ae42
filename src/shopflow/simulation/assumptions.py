"""The simulation's assumptions: every probability and rate of customer behaviour, the reactions to
each kind of email, the hours people visit, their time zones and names.

docs/demo.md lists every number and where it comes from (tests/unit/test_simulation_docs.py checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Email kinds: each has its own reaction probabilities.
ABANDONMENT = "abandonment"
WELCOME = "welcome"
OTHER = "other"


@dataclass(frozen=True)
class EmailResponse:
    open: float  # P(open | delivered)
    click_given_open: float  # P(click | opened)
    purchase_given_click: float  # P(purchase | clicked)


def _email_defaults() -> dict[str, EmailResponse]:
    return {
        ABANDONMENT: EmailResponse(open=0.50, click_given_open=0.18, purchase_given_click=0.40),
        WELCOME: EmailResponse(open=0.52, click_given_open=0.15, purchase_given_click=0.30),
        OTHER: EmailResponse(open=0.52, click_given_open=0.10, purchase_given_click=0.32),
    }


@dataclass(frozen=True)
class Behaviour:
    """Every number of the model; docs/demo.md gives each one's source (test_simulation_docs checks)."""

    existing_customer_share: float = 0.60  # known (identified) when the simulation starts
    marketing_opt_in: float = 0.60  # P(subscribed to email marketing)
    sessions_per_month: float = 4.0  # mean visits per customer per 30 days
    session_rate_shape: float = 0.7  # gamma shape: most customers visit rarely, a few often
    views_per_session: float = 3.0  # mean product views per session (at least 1)
    add_to_cart: float = 0.10  # P(adds to cart | session)
    repeat_buyer_cart_multiplier: float = 1.5  # returning buyers add to cart more often
    second_item: float = 0.30  # P(a second viewed product goes in the cart too)
    quantity_two: float = 0.10  # P(a cart line has quantity 2 rather than 1)
    checkout_given_cart: float = 0.50  # P(starts checkout | added to cart)
    checkout_abandonment: float = 0.70  # P(leaves without paying | started checkout)
    organic_recovery: float = 0.08  # P(comes back and buys an abandoned checkout unprompted)
    organic_recovery_mean_hours: float = 30.0
    cancellation: float = 0.02  # P(order cancelled)
    refund: float = 0.05  # P(order refunded)
    partial_refund_share: float = 0.40  # of refunds, share that return only part of the order
    open_delay_mean_hours: float = 4.0  # mean time from send to open (exponential)
    email: dict[str, EmailResponse] = field(default_factory=_email_defaults)

    def figures(self) -> dict[str, float]:
        """Every number by its name in docs/demo.md (e.g. "email.abandonment.open")."""
        out = {k: float(v) for k, v in vars(self).items() if k != "email"}
        for kind, resp in self.email.items():
            for name, value in vars(resp).items():
                out[f"email.{kind}.{name}"] = float(value)
        return out


# Share of a customer's visits in each local hour (0-23); mean 1.0. An assumption shaped like
# typical retail traffic: quiet at night, rising through the day, peaking 19:00-22:00.
HOURLY_WEIGHTS: tuple[float, ...] = (
    0.35, 0.2, 0.12, 0.1, 0.1, 0.15, 0.35, 0.6, 0.85, 1.0, 1.1, 1.2,
    1.3, 1.3, 1.2, 1.2, 1.25, 1.4, 1.6, 1.85, 1.95, 1.8, 1.3, 0.85,
)  # fmt: skip


TIMEZONES: tuple[tuple[str, float], ...] = (
    ("America/New_York", 0.35),
    ("America/Chicago", 0.20),
    ("America/Denver", 0.07),
    ("America/Los_Angeles", 0.20),
    ("Europe/London", 0.10),
    ("Europe/Berlin", 0.08),
)

FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Ben", "Chloe", "Daniel", "Emma", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kai", "Lena",
    "Mia", "Noah", "Olivia", "Pablo", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Xena",
    "Yara", "Zoe", "Amir", "Bea", "Carlos", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade",
)  # fmt: skip


def email_kind(template_name: str) -> str:
    """Which reaction probabilities apply to a template (by its name)."""
    name = template_name.lower()
    if "cart" in name or "abandon" in name or "checkout" in name:
        return ABANDONMENT
    if "welcome" in name:
        return WELCOME
    return OTHER
