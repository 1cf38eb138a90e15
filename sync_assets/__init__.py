"""Dagster assets: the thin shell that wires the functional core to storage and systems.

``sync_assets.definitions`` is the one place that assembles ``Definitions``.
"""
