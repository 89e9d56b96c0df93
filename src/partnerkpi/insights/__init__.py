"""Insights on top of the KPI rows: trends and baselines, targets, partner lifecycle, the health score
and at-risk partners, alerts, and impact analysis."""
