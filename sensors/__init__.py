"""Sensors: turn new platform state into targeted runs and new partitions."""

from sensors.alerts import (
    check_failure_alert_sensor,
    exception_backlog_alert_sensor,
    run_failure_alert_sensor,
)
from sensors.legal_entities import legal_entity_sensor
from sensors.posting_replay import posting_replay_sensor

__all__ = [
    "check_failure_alert_sensor",
    "exception_backlog_alert_sensor",
    "legal_entity_sensor",
    "posting_replay_sensor",
    "run_failure_alert_sensor",
]
