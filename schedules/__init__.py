"""Schedules: the nightly sync and the period close of the month just ended (batch)."""

from schedules.nightly import nightly_sync_schedule, period_close_schedule

__all__ = ["nightly_sync_schedule", "period_close_schedule"]
