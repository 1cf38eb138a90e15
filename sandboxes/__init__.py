"""Local sandboxes of external systems, for tests and benchmarks.

- :mod:`sandboxes.erp_server`: an ERP that behaves as NetSuite's SuiteTalk REST web services
  document it (journal entries with upsert by external id and ``replace=line``, master data
  with internal ids, SuiteQL, OAuth 2.0 and TBA, a concurrency limit and fault injection);
- :mod:`sandboxes.billing_api`: a Stripe-compatible billing API over the demo's data.

Names are imported lazily so ``python -m sandboxes.erp_server`` runs without a warning.
"""

__all__ = ["DEFAULT_ACCOUNTS", "ErpSandbox", "FaultConfig", "SandboxAuth", "test_credentials"]


def __getattr__(name: str):
    if name in __all__:
        from sandboxes import erp_server

        return getattr(erp_server, name)
    raise AttributeError(f"module 'sandboxes' has no attribute {name!r}")
