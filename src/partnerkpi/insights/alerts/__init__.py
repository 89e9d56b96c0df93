"""Alerts: rules on any KPI for the program, per segment or per partner (read by `rules`), stored
once per firing and shown on the dashboard; `delivery` sends them to webhooks (Slack-compatible
JSON) and by email (SMTP).

Which period a rule looks at: the **last complete period** by the data watermark (`Hub.watermark`: data
up to 2026-07-31 makes July the last complete month), never the month the wall clock is in. A running
period holds only part of its events, so its counts and rates swing with the day of the month, and a
period the data does not reach would read as 0: a collapse that did not happen. Judging complete periods
means a firing states a fact that later data of the same period can only refine (late imports are picked
up by the next evaluation). The wall clock is compared with the watermark for one thing only: a feed
silent for longer than the stale-after setting raises one `stale_data` alert, and meanwhile the rules keep
judging the same last complete period, so a stopped feed fires nothing else.

State lives in the hub's store: `alerts` holds one row per firing (`resolved_at` set when the
condition clears; a condition that comes back is a new firing) and `alert_deliveries` one row per
(alert, channel, event), written in the same transaction as the state change and sent after commit,
so a failed delivery stays visible and is retried by the next run, and a successful one never repeats.
"""

from partnerkpi.insights.alerts.delivery import DeliveryError, deliver_pending, slack_payload
from partnerkpi.insights.alerts.evaluate import (
    DEFAULT_STALE_AFTER,
    AtRiskProvider,
    Condition,
    Key,
    check,
    current_period,
    data_now,
    evaluate,
    scope_key,
    scope_label,
    stale_condition,
)
from partnerkpi.insights.alerts.rules import (
    AlertRulesError,
    AtRiskRule,
    BandChangeRule,
    ChangePctRule,
    EmailChannel,
    Rule,
    RuleSet,
    StaleDataRule,
    ThresholdRule,
    WebhookChannel,
    WorseningRule,
    load_rules,
)
from partnerkpi.insights.alerts.run import AlertRun, run_alerts
from partnerkpi.insights.alerts.scheduler import AlertScheduler
from partnerkpi.insights.alerts.state import (
    Alert,
    acknowledge,
    alerts_in,
    apply_conditions,
    ensure_schema,
    list_alerts,
    list_deliveries,
)

__all__ = [
    "DEFAULT_STALE_AFTER", "Alert", "AlertRulesError", "AlertRun", "AlertScheduler", "AtRiskProvider",
    "AtRiskRule", "BandChangeRule", "ChangePctRule", "Condition", "DeliveryError", "EmailChannel", "Key", "Rule",
    "RuleSet", "StaleDataRule", "ThresholdRule", "WebhookChannel", "WorseningRule", "acknowledge", "alerts_in",
    "apply_conditions", "check", "current_period", "data_now", "deliver_pending", "ensure_schema", "evaluate",
    "list_alerts", "list_deliveries", "load_rules", "run_alerts", "scope_key", "scope_label", "slack_payload",
    "stale_condition",
]
