"""Sensors: turn new platform state into targeted runs and new partitions."""

from sensors.legal_entities import legal_entity_sensor

__all__ = ["legal_entity_sensor"]
