"""What the sandbox serves: its collections (URL segment -> Stripe ``object``) and the
equality filters each list endpoint accepts. A new object type is added here and loaded by
:func:`sandboxes.billing_api.builder.load`."""

from __future__ import annotations

# collection name (URL segment) -> Stripe ``object`` value
COLLECTIONS = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "invoice_payments": "invoice_payment",
    "refunds": "refund",
    "balance_transactions": "balance_transaction",
    "payouts": "payout",
    "invoiceitems": "invoiceitem",
    "prices": "price",
    "events": "event",
    "billing/meter_events": "billing.meter_event",
}
COLLECTION_OF = {v: k for k, v in COLLECTIONS.items()}
# simple equality filters a list endpoint accepts
FILTERS = {
    "customers": ("email",),
    "subscriptions": ("customer", "price"),
    "invoices": ("customer", "subscription", "status"),
    "credit_notes": ("invoice", "customer"),
    "payment_intents": ("customer",),
    "charges": ("customer", "payment_intent"),
    "invoice_payments": ("invoice",),
    "refunds": ("charge", "payment_intent"),
    "balance_transactions": ("payout", "source", "type", "currency"),
    "payouts": ("status",),
    "invoiceitems": ("customer", "invoice"),
    "prices": ("currency", "product", "type"),
    "events": (),
    "billing/meter_events": (),
}
