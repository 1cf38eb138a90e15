"""Functional core of the billing-to-ERP sync: contracts, money, parsing, recognition, posting.

Nothing in this package imports Dagster; the Dagster shell lives in ``sync_assets``,
``resources``, ``sensors`` and ``schedules``.
"""
