"""Who gets which edition. A partner's edition goes to that partner's active users and the addresses configured
for it, and only to domains on the partner's allow-list (configured, else its own users' domains); an address
outside the list is refused with the reason, never sent. The internal edition goes to the subscription's
addresses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from partnerkpi.errors import UsageError
from partnerkpi.store.subscriptions import Subscription, SubscriptionTables

INTERNAL = "internal"
_ADDRESS = re.compile(r"^[^@\s<>,;]+@([^@\s<>,;]+\.[^@\s<>,;]+)$")


@dataclass(frozen=True)
class Recipient:
    """One address an edition is meant for; `refused` says why it must not be sent (None: send)."""

    email: str
    refused: str | None = None


@dataclass(frozen=True)
class Edition:
    """One rendering of a fire: the internal edition, or one partner's, with the recipients it goes to."""

    audience: str  # internal | partner:ID (the renderer's audience)
    partner_id: str | None
    title: str  # the partner's name, or "internal"
    recipients: tuple[Recipient, ...]


def domain_of(email: str) -> str | None:
    """The domain of an address (lower case), or None when it is not an address."""
    match = _ADDRESS.match(email.strip())
    return match.group(1).lower() if match else None


def check_address(email: str) -> str:
    """`email`, trimmed and lower-cased, if it is an address."""
    if domain_of(email) is None:
        raise UsageError(f"'{email}' is not an email address", hint="write it like ana@partner.example")
    return email.strip().lower()


def check_domain(domain: str) -> str:
    """A recipient domain, lower-cased, with no leading @."""
    value = domain.strip().lower().removeprefix("@")
    if domain_of(f"x@{value}") is None:
        raise UsageError(f"'{domain}' is not a mail domain", hint="write it like partner.example")
    return value


def partner_recipients(own: list[str], configured: list[str], allowed: list[str] | None) -> tuple[Recipient, ...]:
    """A partner's recipients: its users' emails and its configured addresses (each once), each refused when its
    domain is not allowed; `allowed` None means the domains of its own users."""
    domains = set(allowed) if allowed else {d for d in map(domain_of, own) if d}
    source = "the partner's allow-list" if allowed else "its users' domains (the default allow-list)"
    out: dict[str, Recipient] = {}
    for email in [*own, *configured]:
        address = email.strip().lower()
        if address in out:
            continue
        domain = domain_of(address)
        if domain is None:
            out[address] = Recipient(address, "not an email address")
        elif domain not in domains:
            shown = ", ".join(sorted(domains)) or "none"
            out[address] = Recipient(address, f"domain {domain} is not in {source} ({shown})")
        else:
            out[address] = Recipient(address)
    return tuple(out.values())


def editions(tables: SubscriptionTables, sub: Subscription, at: datetime) -> list[Edition]:
    """The editions one fire of `sub` at `at` renders, each with its recipients."""
    if sub.audience == INTERNAL:
        return [Edition(INTERNAL, None, INTERNAL, tuple(Recipient(e) for e in sub.to))]
    users, addresses, domains = tables.user_emails(at), tables.addresses(), tables.domains()
    return [Edition(f"partner:{pid}", pid, name,
                    partner_recipients(users.get(pid, []), addresses.get(pid, []), domains.get(pid)))
            for pid, name in tables.partners(at, sub.segment_trait, sub.segment_value)]
