"""Explainable partner health scores, Gainsight-style: weighted components, each measured, scored 0..100
and shown with its contribution; risk levels with the reasons in words. Manual overrides are in `overrides`.

The package: `config` (the YAML model), `measures` (component measurements), `caps` (gates on the level),
`overrides` (a person's decision, with a reason and an expiry), `score` (all of them into a score, a level
and reasons).

The configuration (`defaults/health.yaml`, or the user's file) names the components. Each measures one
value per partner looking back from `as_of`, for all partners at once (ibis over the canonical tables):

- days_since_activity: days since the partner's last activity event before `as_of`; a partner with
  none counts from the later of its onboarding and the start of the history (its first activity event).
- login_trend: Logged In events of the last `recent_days` against the `baseline_days` before them, both
  as a rate per 30 days over the days the partner was onboarded and the history covers; the change in %.
  No data when the baseline window is less than half covered or holds no login.
- active_user_days: breadth of use, distinct (user, UTC day) pairs with an activity event in the last
  `window_days`, per `window_days` of the days the partner was onboarded and the history covers. No data
  when less than half the window is covered.
- task_completion: of the partner's tasks due in the last `window_days` (not cancelled before due),
  the % completed at or before due. No data without such a task.
- overdue_compliance: compliance tasks at `as_of` past due, neither completed nor cancelled (a count).
- support_trend: Support Requested per `recent_days` in the last `recent_days` minus the same rate over
  the `baseline_days` before them (extra requests). No data when the baseline is less than half covered.
- satisfaction: the mean of each user's latest Survey Responded score (0..10) of the last `window_days`.
  No data without an answer.
- access_hygiene: grants open at `as_of` whose holder (a user) was deactivated before it (a count).

A component scores its value through `points` (piecewise linear, flat beyond the ends); one with no
data scores the config's `neutral_score` and says so. The score is Σ wᵢ·sᵢ / Σ wᵢ, and each component's
contribution is wᵢ·sᵢ / Σ wᵢ, so the contributions add up to the score.

The config's `caps` (see `caps`) are gates on the level: a partner with a compliance task overdue
past a grace period, a required policy unacknowledged past it, or no activity for a while, is at best at
the cap's `max_level` whatever its score; the reasons say so first ("level capped at watch: ...").
A manual override wins over a cap (a person decided, with a reason); the cap's reason stays visible.
"""

from partnerkpi.insights.health.caps import CAP_QUERIES, CapConfig, CapResult, judge
from partnerkpi.insights.health.config import (
    ComponentConfig,
    HealthConfig,
    HealthConfigError,
    Level,
    load_config,
    parse_config,
)
from partnerkpi.insights.health.measures import QUERIES, Context, Measured, history_start, measure, utc_instant
from partnerkpi.insights.health.overrides import (
    Override,
    active_overrides,
    add_override,
    list_overrides,
    remove_override,
)
from partnerkpi.insights.health.score import ComponentScore, HealthScore, default_as_of, health_scores, score_of

__all__ = [
    "CAP_QUERIES", "QUERIES", "CapConfig", "CapResult", "ComponentConfig", "ComponentScore", "Context",
    "HealthConfig", "HealthConfigError", "HealthScore", "Level", "Measured", "Override",
    "active_overrides", "add_override", "default_as_of", "health_scores", "history_start", "judge",
    "list_overrides", "load_config", "measure", "parse_config", "remove_override", "score_of", "utc_instant",
]
