"""Sensors: turn new platform state into targeted runs and new partitions."""

from sensors.legal_entities import legal_entity_sensor
from sensors.posting_replay import posting_replay_sensor

__all__ = ["legal_entity_sensor", "posting_replay_sensor"]
