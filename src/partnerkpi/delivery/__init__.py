"""Report delivery: subscriptions on cron schedules, bursting one edition per partner to that partner's
recipients, SMTP with the PDF attached, and a run log per recipient."""

from partnerkpi.delivery.runs import Renderer, Retry, RunSummary, Subscriptions, open_subscriptions, report_renderer
from partnerkpi.delivery.schedule import due_fires, next_fire, period_at

__all__ = ["Renderer", "Retry", "RunSummary", "Subscriptions", "due_fires", "next_fire", "open_subscriptions",
           "period_at", "report_renderer"]
