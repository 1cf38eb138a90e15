"""A sandbox billing API: a Stripe-compatible subset over the demo platform's data.

Standard library only (``http.server.ThreadingHTTPServer``), bound to a loopback address. The
data is the seeded demo generator's canonical file-drop folder (generated on start, or an
existing folder), rendered as Stripe-shaped JSON (API ``2025-03-31.basil`` shapes):

- ids are the canonical ids (``cus_...``, ``sub_...``, ``si_...``, ``in_...``, ``il_...``,
  ``cn_...``, ``cnli_...``, ``re_...`` refunds); every object has ``object``. An invoice's
  payment ``py_<n>`` is collected through a PaymentIntent (Stripe's usual shape) unless the
  CRC-32 of its id is a multiple of 5: the PaymentIntent is ``py_<n>`` (the canonical payment
  id; Stripe's own would start ``pi_``), its charge ``ch_<n>`` with ``payment_intent`` set, the
  invoice payment ``{"type": "payment_intent", "payment_intent": "py_<n>"}``; otherwise the
  charge is ``py_<n>`` and the invoice payment ``{"type": "charge", "charge": "py_<n>"}``.
  Balance transactions are ``txn_<source id>`` (fee 2.9 % rounded half up + 30 minor units,
  refunds 0; :mod:`~sandboxes.billing_api.balance`), payouts ``po_<entity>_<ccy>_<YYYYMMDD>``
  (one automatic payout per legal entity, currency and week), invoice items ``ii_<line id>``; ``metadata.legal_entity`` is the canonical ``entity_id`` and customers carry
  ``metadata.erp_customer_id``; invoices and charges carry ``metadata.fx_rate`` (Stripe has no
  ERP rate: this stands in for the integration's rate source).
- invoice lines use the nested ``parent`` shape (``subscription_item_details`` for recurring,
  usage and proration lines, the latter with ``invoice_item`` set; ``invoice_item_details`` for
  one-off items), ``pricing.price_details``, ``taxes[]`` and ``period.start/end`` (epoch s).
- subscriptions show their current state (last contract version per item) and their newest
  invoice as ``latest_invoice``; canceled ones are listed only with ``status=all`` (as Stripe).
  Metered prices are tiered: ``tiers`` appear only when expanded (``expand[]=tiers``).

Endpoints (GET): ``/v1/<collection>`` for each collection of
:data:`~sandboxes.billing_api.catalog.COLLECTIONS` (``customers``, ``subscriptions``,
``invoices``, ``credit_notes``, ``charges``, ``payment_intents``, ``invoice_payments``,
``refunds``, ``balance_transactions``, ``payouts``, ``invoiceitems``, ``prices``, ``events``,
``billing/meter_events`` (**sandbox only**: Stripe cannot list meter events)) and
``GET /v1/<collection>/{id}``, ``/v1/subscription_items?subscription=``,
``/v1/invoices/{id}/lines``, ``/v1/credit_notes/{id}/lines``, ``GET /v1/prices/{id}``. Lists are
newest first by ``(created, id)`` so objects sharing a second page deterministically, with
``has_more``. Invoices and credit notes embed their first 10 lines with ``has_more`` when there
are more. Events hold the object as it was at the event's time
(:mod:`~sandboxes.billing_api.history`): ``customer.created``,
``customer.subscription.created`` / ``.updated`` (per amendment that changes what is served,
with ``data.previous_attributes``) / ``.deleted``, ``invoice.finalized``, ``invoice.updated``
(with ``previous_attributes``), ``invoice.paid``, ``invoice.voided``,
``invoice.marked_uncollectible``, ``credit_note.created``, ``credit_note.voided``,
``payment_intent.succeeded``, ``payment_intent.payment_failed``, ``charge.succeeded``,
``charge.failed``, ``invoice_payment.paid``, ``refund.created``, ``charge.refunded``,
``payout.created``, ``payout.paid``. Only ``*.updated`` events carry ``previous_attributes``.

Parameters (:mod:`~sandboxes.billing_api.params`, :mod:`~sandboxes.billing_api.query`) are
read in every form Stripe's own parser takes, on the query string and in a form body:
``a[]=x`` and ``a[0]=x`` arrays (the official SDKs send the indexed form), ``a[b]=`` hashes,
a repeated plain key keeping its last value. A list takes ``limit`` (1-100, default 10),
``starting_after`` / ``ending_before``, ``created`` / ``created[gt|gte|lt|lte]``, ``expand``
and its collection's equality filters (:data:`~sandboxes.billing_api.catalog.FILTERS`), plus
``status`` (``all``) on subscriptions and ``type`` (``*`` wildcards) or ``types[]`` (exact) on
events; a retrieve takes ``expand`` only. Any other parameter is refused, including ones Stripe
takes but the sandbox does not implement (never silently ignored).

``expand`` (:mod:`~sandboxes.billing_api.expand`): ``data.<field>`` on lists, nested paths up
to 4 levels (``latest_invoice.customer``, ``data.payments``), over a registry of expandable
fields (customer, subscription, latest_invoice, invoice ``payments``, charge / refund
``balance_transaction``, ``payment_intent``, ``latest_charge``, invoice payment
``payment.charge``, price ``tiers``, ...) resolved in whichever collections are served.

Errors are Stripe's body ``{"error": {"type", "message", "code"?, "doc_url"?, "param"?,
"request_log_url"}}``: ``400 Received unknown parameter: <name>`` (``parameter_unknown``),
``This property cannot be expanded (<path>).`` (``param: expand``), ``404 No such <object>``
(``resource_missing``, ``param: id``). Every answer carries ``Request-Id`` and a
``Stripe-Version`` naming the request's version (the account's, ``2025-03-31.basil``, when the
request names none; the object shapes stay basil whichever is named); errors carry
``Stripe-Should-Retry`` (``true`` on 429 and 5xx, ``false`` on other 4xx), which the
official SDKs follow.

Test hooks (JSON bodies): ``POST /sandbox/events`` ``{"type", "object", "created"?}`` upserts
the object into its collection and appends an event; ``POST /sandbox/faults`` sets
``burst_429`` (next N API requests answer 429 with ``Retry-After: retry_after_s``),
``burst_500``, ``burst_disconnect`` (close without an answer), ``error_rate_500`` (seeded
``seed``), ``slow_page_ms``; ``GET /sandbox/stats``. Every request needs
``Authorization: Bearer <any non-empty key>`` (401 otherwise).

Run: ``python -m sandboxes.billing_api --port 0 --subscriptions 300``. In tests:
``with BillingSandbox(subscriptions=50) as api: api.url, api.add_event(...), api.faults(...),
api.request_count``.
"""

from sandboxes.billing_api.catalog import COLLECTIONS
from sandboxes.billing_api.collections import API_VERSION, ApiError
from sandboxes.billing_api.server import BillingSandbox
from sandboxes.billing_api.state import BillingState

__all__ = ["API_VERSION", "COLLECTIONS", "ApiError", "BillingSandbox", "BillingState"]
