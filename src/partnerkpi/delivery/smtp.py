"""Report mail: one message per recipient (an HTML body with a short summary and a link, the PDF attached,
a Message-ID that is the same for every attempt at one recipient of one fire), sent over SMTP."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from urllib.parse import urlencode

from partnerkpi.settings import MailSettings


class SendError(Exception):
    """The SMTP server refused the message or could not be reached; the text is logged as the reason."""


@dataclass(frozen=True)
class Report:
    """What a message carries: the subscription, the fire, the edition, and the rendered PDF."""

    subscription: str
    fire_at: datetime
    period: str
    audience: str  # internal | partner:ID
    title: str  # the partner's name, or "internal"
    pdf: bytes


def message_id(subscription: str, fire_at: datetime, audience: str, recipient: str) -> str:
    """The Message-ID of one recipient's copy of one fire: stable, so a receiving server can drop a duplicate."""
    digest = hashlib.sha256(f"{subscription}\0{fire_at.isoformat()}\0{audience}\0{recipient}".encode()).hexdigest()
    return f"<{digest[:40]}@partnerkpi>"


def compose(report: Report, recipient: str, mail: MailSettings) -> EmailMessage:
    """The message to `recipient`: subject, a plain and an HTML body, and the PDF attached."""
    edition = "internal report" if report.audience == "internal" else f"report for {report.title}"
    link = f"{mail.base_url.rstrip('/')}/reports?" + urlencode({"period": report.period, "audience": report.audience})
    msg = EmailMessage()
    msg["Subject"] = f"[partnerkpi] {report.subscription}: {edition}, {report.period}"
    msg["From"], msg["To"] = mail.sender, recipient
    msg["Date"] = format_datetime(report.fire_at.replace(tzinfo=UTC))
    msg["Message-ID"] = message_id(report.subscription, report.fire_at, report.audience, recipient)
    summary = f"The {edition} for {report.period} is attached as a PDF."
    msg.set_content(f"{summary}\n\nOpen it online: {link}\n")
    msg.add_alternative(
        f"<html><body><p>{escape(summary)}</p><p><a href=\"{escape(link)}\">Open it online</a></p>"
        f"<p style=\"color:#666\">Sent by the subscription “{escape(report.subscription)}”.</p></body></html>",
        subtype="html")
    slug = report.audience.replace(":", "-")
    msg.add_attachment(report.pdf, maintype="application", subtype="pdf",
                       filename=f"partnerkpi-{report.period}-{slug}.pdf")
    return msg


def send(msg: EmailMessage, mail: MailSettings) -> None:
    """Hand `msg` to the SMTP server; returns only once the server accepted it for its recipient."""
    try:
        with smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout) as smtp:
            if mail.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if mail.username and mail.password:
                smtp.login(mail.username, mail.password)
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError("; ".join(f"{code} {text.decode(errors='replace')}"
                                  for code, text in exc.recipients.values())) from exc
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc
    if refused:  # one recipient per message: a partial refusal is that recipient's refusal
        raise SendError("; ".join(f"{code} {text.decode(errors='replace')}" for code, text in refused.values()))
