"""Local sandboxes of external systems, for tests and benchmarks (standard library only).

- :mod:`sandboxes.erp_server`: an ERP with NetSuite REST journal-entry semantics (upsert by
  external id, validation, closed/locked periods, a concurrency limit and fault injection).

Names are imported lazily so ``python -m sandboxes.erp_server`` runs without a warning.
"""

__all__ = ["DEFAULT_ACCOUNTS", "ErpSandbox", "FaultConfig"]


def __getattr__(name: str):
    if name in __all__:
        from sandboxes import erp_server

        return getattr(erp_server, name)
    raise AttributeError(f"module 'sandboxes' has no attribute {name!r}")
