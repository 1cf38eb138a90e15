"""Landing Stripe objects into the canonical mirror folder (file-drop format), no Dagster.

The mirror is an append-only folder of batches. A batch ``B`` is the files
``<object>-B.ndjson`` (one per non-empty canonical frame), ``_quarantine-B.ndjson`` (records
the normalizer could not read) and, written last, the manifest ``_batch-B.json``: a batch
without its manifest was interrupted and is ignored by :func:`latest_records`, so a crash
mid-landing never exposes half a document. Every file is written to a temporary name and
renamed (atomic on POSIX); landing the same batch id twice rewrites the same files.

Batch ids sort in *as-of* order: ``<as-of time %Y%m%dT%H%M%S>-<kind><...>`` where the as-of
time is the newest event time a sensor batch covers, or the start of a reconcile pull.
Snapshots of one object (an invoice open, then paid) are records of the same id in several
batches: the latest batch wins (:func:`latest_records`), and for a document (invoice, credit
note) the line set of the batch its header comes from wins too, so a line that disappeared
from a later snapshot does not survive.

:func:`affected_partitions` says which (entity, month) partitions a landed batch touches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from sync_core.contracts.validate import SOURCE_ID
from sync_core.filedrop import HEADER_OF
from sync_core.stripe.normalize import OBJECTS, Normalized

MANIFEST_PREFIX = "_batch-"
QUARANTINE = "_quarantine"
LEGAL_ENTITIES = "legal_entities.csv"
# records of these objects are versions: an amendment history is kept whole
ID_COLUMNS = {k: [v] for k, v in SOURCE_ID.items()}
ID_COLUMNS["subscription_contracts"] = ["contract_id", "version"]

Partition = tuple[str, str]  # (entity_id, "YYYY-MM-01")


# ------------------------------------------------------------------------------ batch ids


def batch_id(as_of: int | float | dt.datetime, kind: str, tail: str) -> str:
    """``<as-of UTC %Y%m%dT%H%M%S>-<kind><tail>``: sortable, file-name safe."""
    if not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.fromtimestamp(int(as_of), dt.UTC)
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in f"{kind}{tail}")
    return f"{as_of.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{safe}"


def digest(ids: Iterable[str], n: int = 12) -> str:
    """A short stable hash of a set of ids (order does not matter)."""
    return hashlib.sha256(",".join(sorted(set(ids))).encode()).hexdigest()[:n]


def batch_of(source_file: str, object_name: str) -> str:
    """The batch id of ``<object>-<batch>.ndjson``; ``""`` for a base file ``<object>.csv``."""
    stem = Path(source_file).stem
    return stem[len(object_name) + 1 :] if stem.startswith(object_name + "-") else ""


def committed_batches(folder: str | Path) -> set[str]:
    """Ids of the batches whose manifest exists (landed completely)."""
    folder = Path(folder)
    if not folder.is_dir():
        return set()
    return {
        p.name[len(MANIFEST_PREFIX) : -len(".json")]
        for p in folder.iterdir()
        if p.name.startswith(MANIFEST_PREFIX) and p.name.endswith(".json")
    }


# ------------------------------------------------------------------------------ writing


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not .csv/.ndjson: never read
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _ndjson(df: pd.DataFrame) -> bytes:
    cols = [c for c in df.columns if not str(c).startswith("_")]
    text = df[cols].to_json(orient="records", lines=True, date_format="iso", date_unit="us")
    return text.encode() if text.endswith("\n") else (text + "\n").encode()


def ensure_legal_entities(
    folder: str | Path,
    legal_entities: pd.DataFrame | None = None,
    seed: str | Path | None = None,
) -> Path:
    """``legal_entities.csv`` in the mirror: kept if present, else written from the frame or
    copied from ``seed``. Raises when there is neither (the mirror would be unusable)."""
    target = Path(folder) / LEGAL_ENTITIES
    if target.exists():
        return target
    if legal_entities is not None and len(legal_entities):
        cols = [c for c in legal_entities.columns if not str(c).startswith("_")]
        _write_atomic(target, legal_entities[cols].to_csv(index=False).encode())
    elif seed is not None and Path(seed).is_file():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(seed, tmp)
        os.replace(tmp, target)
    else:
        raise FileNotFoundError(
            f"{target} is missing and no legal entities were given: set the legal entities "
            "seed (SYNC_STRIPE_LEGAL_ENTITIES) or copy a legal_entities.csv into the mirror"
        )
    return target


def land_objects(
    folder: str | Path,
    normalized: Normalized,
    batch_id: str,
    *,
    legal_entities: pd.DataFrame | None = None,
    legal_entities_seed: str | Path | None = None,
    manifest: Mapping | None = None,
) -> dict[str, int]:
    """Write one batch into the mirror and commit it; returns rows per file written.

    Each non-empty canonical frame becomes ``<object>-<batch_id>.ndjson``, the quarantine
    ``_quarantine-<batch_id>.ndjson``; the manifest ``_batch-<batch_id>.json`` (with
    ``manifest`` merged in) is written last. Idempotent for the same ``batch_id``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ensure_legal_entities(folder, legal_entities, legal_entities_seed)
    counts: dict[str, int] = {}
    for name, frame in normalized.frames().items():
        if len(frame):
            _write_atomic(folder / f"{name}-{batch_id}.ndjson", _ndjson(frame))
            counts[name] = len(frame)
    if len(normalized.quarantine):
        _write_atomic(folder / f"{QUARANTINE}-{batch_id}.ndjson", _ndjson(normalized.quarantine))
        counts[QUARANTINE] = len(normalized.quarantine)
    body = {
        "batch_id": batch_id,
        "landed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "counts": counts,
        **dict(manifest or {}),
    }
    _write_atomic(folder / f"{MANIFEST_PREFIX}{batch_id}.json", json.dumps(body).encode())
    return counts


# ------------------------------------------------------------------------------ reading


def _batches(df: pd.DataFrame, object_name: str) -> pd.Series:
    names = df["_source"]
    return names.map({n: batch_of(n, object_name) for n in names.unique()})


def latest_records(
    df: pd.DataFrame,
    object_name: str,
    committed: set[str],
    header: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The mirror's current state of an object from every record read (``filedrop.read_object``
    with ``_source``): records of uncommitted batches dropped, then the last record per source
    id, batches in id order (a base file without a batch first).

    For line objects pass ``header``, the header object's :func:`latest_records`: a document's
    lines are those of the batch its latest header comes from.
    """
    if df.empty or object_name == "legal_entities":
        return df
    batch = _batches(df, object_name)
    keep = (batch == "") | batch.isin(committed)
    df = df[keep].assign(_batch=batch[keep]).sort_values("_batch", kind="stable")
    if object_name in HEADER_OF and header is not None and len(header):
        header_name, key, hkey = HEADER_OF[object_name]
        hb = header.assign(_hb=_batches(header, header_name))
        of_doc = df[key].map(hb.drop_duplicates(hkey, keep="last").set_index(hkey)["_hb"])
        df = df[of_doc.isna() | (of_doc == df["_batch"])]
    ids = [c for c in ID_COLUMNS.get(object_name, []) if c in df.columns]
    if ids:
        df = df.drop_duplicates(subset=ids, keep="last")
    return df.drop(columns="_batch").reset_index(drop=True)


# ------------------------------------------------------------------------------ partitions


def _month(ts) -> pd.Timestamp | None:
    if ts is None or pd.isna(ts):
        return None
    ts = pd.Timestamp(ts)
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    return pd.Timestamp(year=ts.year, month=ts.month, day=1, tz="UTC")


def _months(start, end_exclusive, cap: pd.Timestamp, floor=None) -> list[pd.Timestamp]:
    """Months of ``[start, end)``, from ``floor`` on, up to the month ``cap``."""
    first = _month(start)
    if first is None:
        return []
    if end_exclusive is None or pd.isna(end_exclusive):
        last = cap
    else:
        last = min(_month(pd.Timestamp(end_exclusive) - pd.Timedelta(1, "ns")), cap)
    if floor is not None:
        first = max(first, floor)
    out, m = [], first
    while m <= last:
        out.append(m)
        m = m + pd.offsets.MonthBegin(1)
    return out


def _key(entity, month: pd.Timestamp | None) -> Partition | None:
    if month is None or entity is None or pd.isna(entity):
        return None
    return str(entity), f"{month:%Y-%m-%d}"


def affected_by_document(
    normalized: Normalized,
    *,
    invoices: pd.DataFrame | None = None,
    invoice_lines: pd.DataFrame | None = None,
    now: dt.datetime | pd.Timestamp | None = None,
) -> dict[str, set[Partition]]:
    """Source document id -> the (entity, ``YYYY-MM-01``) partitions it touches.

    - customer: its ``created_at`` month (its partition holds the ERP crosswalk);
    - contract version: its effective month through the end of its service (open-ended
      here, so through the current month);
    - usage event: its month; payment: its month; a refund without a credit note, and a
      dispute (its opening and closing months), also the months of its invoice's service
      from its own month on (Stripe takes that revenue back);
    - invoice: its finalization month, its void month, and every month of its lines'
      service periods (revenue is earned there: a proration billed in May changes April);
    - credit note: its issue and void months, the finalization month of the invoice it
      credits (a late note touches that past period), and the service months of the
      credited lines from the note's month on (the credit reduces what is still to come).

    Months after the current month (``now``) are left out. ``invoices`` / ``invoice_lines``
    (the mirror's, :func:`latest_records`) resolve the invoice of a credit note landed
    without it.
    """
    cap = _month(pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC"))
    out: dict[str, set[Partition]] = {}

    def add(doc, entity, months) -> None:
        keys = {_key(entity, m) for m in months}
        out.setdefault(str(doc), set()).update(k for k in keys if k is not None)

    n = normalized
    for r in n.customers.itertuples(index=False):
        add(r.customer_id, r.entity_id, [_month(r.created_at)])
    for r in n.subscription_contracts.itertuples(index=False):
        add(r.contract_id, r.entity_id, _months(r.effective_at, None, cap))
    for r in n.usage_events.itertuples(index=False):
        add(r.event_id, r.entity_id, [_month(r.timestamp)])

    # invoices and their lines: this batch's first, then the mirror's
    inv_frames = [f for f in (n.invoices, invoices) if f is not None and len(f)]
    line_frames = [f for f in (n.invoice_lines, invoice_lines) if f is not None and len(f)]
    cols = ["invoice_id", "finalized_at"]
    inv_month = (
        pd.concat([f[cols] for f in inv_frames]).drop_duplicates("invoice_id")
        if inv_frames
        else pd.DataFrame(columns=cols)
    ).set_index("invoice_id")["finalized_at"]
    lcols = ["line_key", "invoice_id", "period_start", "period_end"]
    all_lines = (
        pd.concat([f[lcols] for f in line_frames]).drop_duplicates("line_key")
        if line_frames
        else pd.DataFrame(columns=lcols)
    )
    batch_lines = n.invoice_lines.groupby("invoice_id") if len(n.invoice_lines) else None
    for r in n.invoices.itertuples(index=False):
        months = [_month(r.finalized_at), _month(r.voided_at)]
        if batch_lines is not None and r.invoice_id in batch_lines.groups:
            for ln in batch_lines.get_group(r.invoice_id).itertuples(index=False):
                months += _months(ln.period_start, ln.period_end, cap)
        add(r.invoice_id, r.entity_id, months)

    note_lines = n.credit_note_lines.groupby("credit_note_id") if len(n.credit_note_lines) else None
    lines_by_key = all_lines.set_index("line_key") if len(all_lines) else None
    lines_by_invoice = all_lines.groupby("invoice_id") if len(all_lines) else None
    for r in n.credit_notes.itertuples(index=False):
        issued = _month(r.issued_at)
        months = [issued, _month(r.voided_at)]
        if r.invoice_id in inv_month.index:
            months.append(_month(inv_month.loc[r.invoice_id]))
        named = []
        if note_lines is not None and r.credit_note_id in note_lines.groups:
            keys = note_lines.get_group(r.credit_note_id)["invoice_line_key"]
            named = [k for k in keys if k is not None and not pd.isna(k)]
            loose = len(keys) > len(named)
        else:
            loose = True
        credited = pd.DataFrame(columns=lcols)
        if lines_by_key is not None:
            parts = [lines_by_key.loc[lines_by_key.index.intersection(named)].reset_index()]
            if loose and lines_by_invoice is not None and r.invoice_id in lines_by_invoice.groups:
                parts.append(lines_by_invoice.get_group(r.invoice_id))
            credited = pd.concat(parts)
        for ln in credited.itertuples(index=False):
            months += _months(ln.period_start, ln.period_end, cap, floor=issued)
        add(r.credit_note_id, r.entity_id, months)

    # payments, and what takes revenue back from an invoice's remaining service: a refund
    # without a credit note, a dispute (opened, and won or lost)
    def taken_back(invoice_id, when) -> list[pd.Timestamp]:
        floor = _month(when)
        if floor is None or lines_by_invoice is None or invoice_id not in lines_by_invoice.groups:
            return []
        lines = lines_by_invoice.get_group(invoice_id)
        return [m for ln in lines.itertuples(index=False)
                for m in _months(ln.period_start, ln.period_end, cap, floor=floor)]  # fmt: skip

    for r in n.payments.itertuples(index=False):
        months = [_month(r.created_at)]
        if r.kind == "refund" and pd.isna(r.credit_note_id) and not pd.isna(r.invoice_id):
            months += taken_back(r.invoice_id, r.created_at)
        add(r.payment_id, r.entity_id, months)
    for r in n.disputes.itertuples(index=False):
        months = [_month(r.created_at), _month(r.closed_at)]
        if not pd.isna(r.invoice_id):
            months += taken_back(r.invoice_id, r.created_at)
        add(r.dispute_id, r.entity_id, months)
    return out


def affected_partitions(normalized: Normalized, **options) -> set[Partition]:
    """Every (entity, ``YYYY-MM-01``) the batch touches (see :func:`affected_by_document`)."""
    out: set[Partition] = set()
    for keys in affected_by_document(normalized, **options).values():
        out |= keys
    return out


def document_ids(obj: Mapping) -> list[str]:
    """The canonical source ids a Stripe object becomes (the keys of
    :func:`affected_by_document`): a subscription is its items' contracts, a charge or an
    invoice payment its settlement (the PaymentIntent when there is one, else the charge or
    payment record: ``sync_core.stripe.payments``), a meter event its identifier."""
    otype, oid = obj.get("object"), obj.get("id")
    if otype == "charge" and obj.get("payment_intent"):
        pi = obj["payment_intent"]
        return [str(pi.get("id") if isinstance(pi, Mapping) else pi)]
    if otype == "subscription":
        items = (obj.get("items") or {}).get("data") or []
        return [str(i["id"]) for i in items if isinstance(i, Mapping) and i.get("id")]
    if otype == "invoice_payment":
        payment = obj.get("payment") or {}
        ref = payment.get(payment.get("type") or "") if isinstance(payment, Mapping) else None
        ref = ref.get("id") if isinstance(ref, Mapping) else ref
        return [str(ref or oid)]
    if otype == "billing.meter_event":
        return [str(obj.get("identifier") or oid)]
    return [str(oid)] if oid else []


__all__ = [
    "ID_COLUMNS",
    "OBJECTS",
    "affected_by_document",
    "affected_partitions",
    "batch_id",
    "batch_of",
    "committed_batches",
    "digest",
    "document_ids",
    "ensure_legal_entities",
    "land_objects",
    "latest_records",
]
