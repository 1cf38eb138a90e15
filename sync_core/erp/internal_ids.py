"""NetSuite internal ids of the records a journal references, per legal entity.

A NetSuite journal names its subsidiary, currency, posting period, accounts, customers,
departments, classes and locations by internal id (``{"id": "54"}``), while the platform
knows account numbers, ISO currency codes, ``erp_subsidiary_id``, months and
``erp_customer_id``. :class:`InternalIds` maps one to the other:

1. what ``config/erp.yaml`` sets under ``internal_ids`` (the entity's block over
   ``defaults``; :meth:`sync_core.erp.config.ErpConfig.internal_ids`) wins;
2. the rest is looked up by SuiteQL, once per key and client (kept, found or not, for the
   client's lifetime, which is one posting run): accounts by ``acctnumber``, currencies by
   ``symbol``, subsidiaries by ``id`` or ``name``, customers by ``entityid`` or
   ``externalid``, and accounting periods by their start date, with their ``closed`` flag
   (all posting periods in one query, dates as ``TO_CHAR(..., 'YYYY-MM-DD')``; a quarter or a
   year is not a posting period).

A key that neither gives is ``None``: the journal that needs it is not sent
(:mod:`sync_core.erp.netsuite_body`). The reverse maps (internal id -> key) serve the GL read
back (:mod:`sync_core.erp.gl_read`). No Dagster imports.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sync_core.erp.config import INTERNAL_ID_KINDS, ErpConfig

# kind -> (SuiteQL table, the columns a key may match, in order)
LOOKUPS = {
    "accounts": ("account", ("acctnumber",)),
    "currencies": ("currency", ("symbol",)),
    "subsidiaries": ("subsidiary", ("id", "name")),
    "customers": ("customer", ("entityid", "externalid")),
}
BATCH = 200  # keys per IN list
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y")


@dataclass(frozen=True)
class AccountingPeriod:
    """A NetSuite posting period: internal id, name, first and last day, closed flag."""

    id: str
    name: str | None
    start: dt.date
    end: dt.date | None
    closed: bool


def literal(value) -> str:
    """A SuiteQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def parse_date(value) -> dt.date | None:
    """A SuiteQL date: ISO (``2025-03-01``, with or without a time; the queries here select
    ``TO_CHAR(date, 'YYYY-MM-DD')`` so that NetSuite's date preference does not matter), else
    NetSuite's default ``M/D/YYYY`` (or ``D.M.YYYY``); None when empty or unreadable."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if re.match(r"\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text[:10])
    for fmt in _DATE_FORMATS[1:]:
        try:
            return dt.datetime.strptime(text.split(" ")[0], fmt).date()
        except ValueError:
            continue
    return None


def _flag(value) -> bool:
    return str(value).strip().upper() in ("T", "TRUE", "1", "Y", "YES")


class InternalIds:
    """Internal ids of one NetSuite account for the platform's entities (module docstring).

    ``config`` gives the configured ids; ``query(sql) -> rows`` runs SuiteQL (every page)
    and fills the rest; without it only the configuration answers. Thread-safe.
    """

    def __init__(self, config: ErpConfig | None = None,
                 query: Callable[[str], list[dict]] | None = None):  # fmt: skip
        self._config = config or ErpConfig()
        self._query = query
        self._lock = threading.RLock()
        self._found: dict[str, dict[str, str | None]] = {k: {} for k in LOOKUPS}
        self._keys: dict[str, dict[str, str | None]] = {k: {} for k in INTERNAL_ID_KINDS}
        self._periods: list[AccountingPeriod] | None = None
        self._configured: dict[str, dict[str, dict[str, str]]] = {}

    @property
    def config(self) -> ErpConfig:
        return self._config

    def configured(self, entity_id: str) -> dict[str, dict[str, str]]:
        with self._lock:
            if entity_id not in self._configured:
                ids = self._config.internal_ids(entity_id)
                self._configured[entity_id] = ids
                for kind, m in ids.items():
                    for key, iid in m.items():
                        self._keys[kind].setdefault(iid, key)
            return self._configured[entity_id]

    # forward: key -> internal id -------------------------------------------------------------
    def prefetch(self, entity_id: str, wanted: dict[str, Iterable[str]]) -> None:
        """Look up, in batches, every key of ``wanted`` (kind -> keys) that the configuration
        does not give and no earlier lookup answered; then :meth:`ref` answers from memory."""
        conf = self.configured(entity_id)
        for kind, keys in wanted.items():
            if kind not in LOOKUPS or self._query is None:
                continue
            with self._lock:
                todo = sorted({str(k) for k in keys if k is not None}
                              - set(conf.get(kind, {})) - set(self._found[kind]))  # fmt: skip
            for i in range(0, len(todo), BATCH):
                self._lookup(kind, todo[i : i + BATCH])

    def _lookup(self, kind: str, keys: list[str]) -> None:
        table, columns = LOOKUPS[kind]
        clauses = []
        for c in columns:
            # NetSuite's ``id`` is numeric: a non-numeric key compared to it fails the query
            matching = [k for k in keys if c != "id" or k.isdigit()]
            if matching:
                clauses.append(f"{c} IN ({', '.join(literal(k) for k in matching)})")
        where = " OR ".join(clauses)
        cols = ", ".join(dict.fromkeys(("id", *columns)))
        rows = self._query(f"SELECT {cols} FROM {table} WHERE {where} ORDER BY id")
        hits: dict[str, str] = {}
        for column in reversed(columns):  # the first column wins over the later ones
            for r in rows:
                if r.get(column) is not None and str(r[column]) in keys:
                    hits[str(r[column])] = str(r["id"])
        with self._lock:
            for k in keys:
                self._found[kind][k] = hits.get(k)
                if k in hits:
                    self._keys[kind].setdefault(hits[k], k)

    def ref(self, entity_id: str, kind: str, key) -> str | None:
        """The internal id of ``key`` of ``kind`` for the entity, or None (looked up first
        when it was not prefetched)."""
        if key is None:
            return None
        key = str(key)
        conf = self.configured(entity_id).get(kind, {})
        if key in conf:
            return conf[key]
        with self._lock:
            known = key in self._found.get(kind, {})
        if not known and kind in LOOKUPS and self._query is not None:
            self._lookup(kind, [key])
        with self._lock:
            return self._found.get(kind, {}).get(key)

    # accounting periods ----------------------------------------------------------------------
    def periods(self) -> list[AccountingPeriod]:
        """Every posting period of the account (one query, kept)."""
        with self._lock:
            if self._periods is not None:
                return self._periods
        rows = [] if self._query is None else self._query(
            "SELECT id, periodname, TO_CHAR(startdate, 'YYYY-MM-DD') AS startdate, "
            "TO_CHAR(enddate, 'YYYY-MM-DD') AS enddate, closed, isposting FROM accountingperiod "
            "ORDER BY id")  # fmt: skip
        periods = []
        for r in rows:
            start = parse_date(r.get("startdate"))
            if start is None or ("isposting" in r and not _flag(r["isposting"])):
                continue
            periods.append(AccountingPeriod(str(r["id"]), r.get("periodname"), start,
                                            parse_date(r.get("enddate")),
                                            _flag(r.get("closed"))))  # fmt: skip
        with self._lock:
            self._periods = periods
            for p in periods:
                self._keys["periods"].setdefault(p.id, f"{p.start:%Y-%m}")
        return periods

    def period(self, entity_id: str, month: dt.date) -> AccountingPeriod | None:
        """The posting period of the month starting ``month``: configured (``YYYY-MM`` ->
        internal id; never closed as far as the platform knows) or looked up by start date.
        A month with two posting periods starting on its first day (an adjustment period)
        takes the one that ends on the month's last day."""
        month = dt.date(month.year, month.month, 1)
        iid = self.configured(entity_id).get("periods", {}).get(f"{month:%Y-%m}")
        if iid is not None:
            return AccountingPeriod(iid, None, month, None, False)
        found = [p for p in self.periods() if p.start == month]
        if len(found) > 1:
            month_end = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            found = [p for p in found if p.end == month_end - dt.timedelta(days=1)] or found[:1]
        return found[0] if found else None

    # reverse: internal id -> key -------------------------------------------------------------
    def key_of(self, kind: str, internal_id) -> str | None:
        """The platform's key of an internal id (accounts: the number; currencies: the ISO
        code; periods: ``YYYY-MM``; customers: ``entityid``), from the configuration, earlier
        lookups, or a lookup by id."""
        if internal_id is None:
            return None
        iid = str(internal_id)
        if kind == "periods":
            self.periods()
        with self._lock:
            if iid in self._keys[kind]:
                return self._keys[kind][iid]
        if kind in LOOKUPS and self._query is not None:
            self.keys_of(kind, [iid])
        with self._lock:
            return self._keys[kind].get(iid)

    def keys_of(self, kind: str, internal_ids: Iterable) -> dict[str, str | None]:
        """:meth:`key_of` of many internal ids, looked up in batches."""
        ids = sorted({str(i) for i in internal_ids if i is not None})
        with self._lock:
            todo = [i for i in ids if i not in self._keys[kind]]
        if todo and kind in LOOKUPS and self._query is not None:
            table, columns = LOOKUPS[kind]
            column = columns[0]
            for i in range(0, len(todo), BATCH):
                part = ", ".join(literal(x) for x in todo[i : i + BATCH])
                rows = self._query(f"SELECT id, {column} FROM {table} WHERE id IN ({part})")
                with self._lock:
                    for r in rows:
                        if r.get(column) is not None:
                            self._keys[kind].setdefault(str(r["id"]), str(r[column]))
                    for x in todo[i : i + BATCH]:  # not found: asked once
                        self._keys[kind].setdefault(x, None)
        with self._lock:
            return {i: self._keys[kind].get(i) for i in ids}
