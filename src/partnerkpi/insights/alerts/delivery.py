"""Alert delivery: the subject and text of a firing or a resolve, the Slack-compatible webhook body, sending
by webhook (httpx) and by email (SMTP), and the loop that sends every `alert_deliveries` row not yet
delivered, records each attempt, and so retries a failed one on the next run."""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

import httpx

from partnerkpi.engine.result import iso_z
from partnerkpi.insights.alerts.evaluate import scope_label
from partnerkpi.insights.alerts.state import alerts_in

if TYPE_CHECKING:
    from partnerkpi.hub import Hub
    from partnerkpi.insights.alerts.rules import EmailChannel, RuleSet, WebhookChannel
    from partnerkpi.insights.alerts.state import Alert

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message is stored as the delivery's error."""


def _texts(alert: Alert, event: str) -> tuple[str, str]:
    """(subject, plain-text body) of a fired or resolved message."""
    scope = scope_label(alert.scope_key, {}) if alert.scope_key else "whole program"
    head = "RESOLVED" if event == "resolved" else alert.severity.upper()
    subject = f"[partnerkpi] {head}: {alert.rule_id} ({scope})"
    lines = [
        f"Resolved at {iso_z(alert.resolved_at)}: the condition no longer holds." if event == "resolved"
        and alert.resolved_at else f"Fired at {iso_z(alert.fired_at)}.",
        "",
        alert.message,
        "",
        f"rule: {alert.rule_id}    severity: {alert.severity}    scope: {scope}",
        f"kpi: {alert.kpi or '-'}    period: {alert.period or '-'}    alert: #{alert.alert_id}",
    ]
    return subject, "\n".join(lines) + "\n"


def slack_payload(alert: Alert, event: str) -> dict[str, Any]:
    """The Slack-compatible JSON body of a webhook delivery: `text` (fallback) and `blocks`."""
    subject, body = _texts(alert, event)
    first = body.split("\n", 1)[0]
    return {
        "text": f"{subject}\n{alert.message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.message}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"{first} rule `{alert.rule_id}` · severity {alert.severity} · period {alert.period or '-'}"
                f" · alert #{alert.alert_id}")}]},
        ],
    }


def _send_webhook(channel: WebhookChannel, alert: Alert, event: str) -> None:
    url = channel.url or os.environ.get(channel.url_env or "")
    if not url:
        raise DeliveryError(f"the environment variable {channel.url_env} (webhook URL) is not set")
    try:
        response = httpx.post(url, json=slack_payload(alert, event), timeout=channel.timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text.strip()[:200]}")


def _send_email(channel: EmailChannel, alert: Alert, event: str) -> None:
    subject, body = _texts(alert, event)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, channel.sender, ", ".join(channel.to)
    msg["Message-ID"] = make_msgid(domain="partnerkpi")
    msg.set_content(body)
    user = os.environ.get(channel.username_env) if channel.username_env else None
    password = os.environ.get(channel.password_env) if channel.password_env else None
    if channel.username_env and (user is None or password is None):
        raise DeliveryError(f"set the environment variables {channel.username_env} and {channel.password_env} "
                            "(SMTP credentials)")
    smtp_class = smtplib.SMTP_SSL if channel.ssl else smtplib.SMTP
    try:
        with smtp_class(channel.host, channel.port, timeout=channel.timeout) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if user is not None and password is not None:
                smtp.login(user, password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


def deliver_pending(hub: Hub, rules: RuleSet) -> tuple[int, int]:
    """Send every delivery that has not succeeded yet (fired before resolved); returns (ok, failed)."""
    store = hub.store
    pending = store.alerts.pending_deliveries()
    alerts = {a.alert_id: a for a in alerts_in(store, ids=sorted({p[0] for p in pending}))} if pending else {}
    ok = failed = 0
    fired_failed: set[tuple[int, str]] = set()
    for alert_id, name, event in pending:
        if event == "resolved" and (alert_id, name) in fired_failed:
            continue  # a resolve is only sent after its firing went out
        channel, error = rules.channels.get(name), None
        try:
            if channel is None:
                raise DeliveryError(f"channel '{name}' is not defined in {rules.source}")
            if channel.webhook is not None:
                _send_webhook(channel.webhook, alerts[alert_id], event)
            elif channel.email is not None:
                _send_email(channel.email, alerts[alert_id], event)
        except DeliveryError as exc:
            error = str(exc)
            log.warning("alert #%s: %s delivery to %s failed: %s", alert_id, event, name, error)
        store.alerts.record_attempt(alert_id, name, event, hub.clock(), error)
        if error:
            failed += 1
            if event == "fired":
                fired_failed.add((alert_id, name))
        else:
            ok += 1
    return ok, failed
