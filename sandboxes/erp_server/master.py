"""The sandbox ERP's master data: records with NetSuite internal ids, seeded deterministically.

Tables, keyed by internal id (a string of digits, like NetSuite's), their columns named as in
SuiteQL:

- ``account``: the account numbers of ``config/erp.yaml`` (``defaults.accounts`` and every
  entity's own ``accounts``), ids ``101``, ``102``, ... in account-number order, so an account
  number sent as an id is refused;
- ``currency``: the demo's ISO currencies, ``USD`` ``1``, ``GBP`` ``2``, ``EUR`` ``3``, then the
  others alphabetically (``symbol`` the ISO code, ``currencyprecision`` its exponent);
- ``subsidiary``: the demo's twenty legal entities, id = their ``erp_subsidiary_id``
  (``"1"`` US01 USD, ``"2"`` UK01 GBP, ``"3"`` DE01 EUR, ...), each with its currency;
- ``accountingperiod``: 2023 to 2028, per year the year (``FY 2025``), its quarters
  (``Q1 2025``) and months (``Mar 2025``, ``isposting = 'T'``, the only ones a journal can
  post to), ids in that order from ``1``;
- ``customer``: none unless given (``master_data``, ``POST /sandbox/master_data``) or read
  from a file drop (:class:`FiledropMaster`): ids from ``501``, ``entityid`` = ``externalid``
  = the platform's ``erp_customer_id``;
- ``department``, ``classification``, ``location``: two, two and one named rows.

``MasterData.add({...})`` adds records (``accounts``, ``currencies``, ``subsidiaries``,
``periods`` as years or ``YYYY-MM``, ``customers``, ``departments``, ``classes``,
``locations``); adding an existing key is a no-op. Period status is not master data here: it
is :class:`~sandboxes.erp_server.config.FaultConfig` (``closed_periods``, ``locked_periods``).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import threading
from pathlib import Path

import yaml

from sync_core.demo.entities import CURRENCY_TABLE, ENTITY_TABLE, FOREIGN
from sync_core.money import CURRENCIES, exponent

ERP_YAML = Path(__file__).resolve().parents[2] / "config" / "erp.yaml"
TABLES = ("account", "currency", "subsidiary", "accountingperiod", "customer", "department",
          "classification", "location")  # fmt: skip
YEARS = (2023, 2028)
ACCOUNT_BASE, CUSTOMER_BASE = 100, 500
ACCOUNT_TYPES = {"Cash": "Bank", "AccountsReceivable": "AcctRec",
                 "DeferredRevenue": "DeferRevenue"}  # fmt: skip
TYPE_BY_DIGIT = {"1": "OthCurrAsset", "2": "OthCurrLiab", "3": "Equity", "4": "Income",
                 "5": "COGS", "6": "Expense", "7": "OthIncome", "8": "OthExpense"}  # fmt: skip
DIMENSIONS = {"department": ("Sales", "Finance"), "classification": ("Subscriptions", "Usage"),
              "location": ("Headquarters",)}  # fmt: skip


def chart_accounts(path: str | Path | None = None) -> dict[str, str]:
    """``{account number: canonical account}`` of an ERP config (``config/erp.yaml``)."""
    path = Path(path or ERP_YAML)
    if not path.exists():
        from sync_core.posting import DEFAULT_CHART

        return {str(n): a for a, n in DEFAULT_CHART.items()}
    raw = yaml.safe_load(path.read_text()) or {}
    blocks = [raw.get("defaults") or {}, *((raw.get("entities") or {}).values())]
    chart: dict[str, str] = {}
    for block in blocks:
        for name, number in ((block or {}).get("accounts") or {}).items():
            chart.setdefault(str(number), str(name))
    return chart


def _month_name(year: int, month: int) -> str:
    return f"{calendar.month_abbr[month]} {year}"


def _tf(flag: bool) -> str:
    return "T" if flag else "F"


class MasterData:
    """Master records by table and internal id, with lookups by their keys; thread-safe."""

    def __init__(self):
        self.lock = threading.RLock()
        self.rows: dict[str, dict[str, dict]] = {t: {} for t in TABLES}
        self.version = 0  # bumped on every change (the SQL mirror follows it)
        self._by_number: dict[str, str] = {}
        self._by_symbol: dict[str, str] = {}
        self._by_month: dict[str, str] = {}
        self._by_customer: dict[str, str] = {}

    # -- seeding ---------------------------------------------------------------------------
    @classmethod
    def default(cls, erp_config: str | Path | None = None) -> MasterData:
        """The deterministic seed of the module docstring."""
        m = cls()
        rest = sorted(set(CURRENCY_TABLE) - set(FOREIGN))
        for code in (*FOREIGN, *rest):
            m.add_currency(code)
        for entity_id, name, ccy, country, sub, *_ in ENTITY_TABLE:
            m.add_subsidiary(sub, f"{name} ({entity_id})", ccy, country)
        chart = chart_accounts(erp_config)
        for number in sorted(chart, key=lambda n: (len(n), n)):
            m.add_account(number, chart[number])
        for year in range(YEARS[0], YEARS[1] + 1):
            m.add_year(year)
        for table, names in DIMENSIONS.items():
            for name in names:
                m.add_named(table, name)
        return m

    def _next_id(self, table: str, base: int = 0) -> str:
        ids = [int(i) for i in self.rows[table]]
        return str(max([base, *ids]) + 1)

    def _put(self, table: str, row: dict) -> str:
        self.rows[table][row["id"]] = row
        self.version += 1
        return row["id"]

    def add_currency(self, symbol: str) -> str:
        symbol = str(symbol).upper()
        with self.lock:
            if symbol in self._by_symbol:
                return self._by_symbol[symbol]
            if symbol not in CURRENCIES:
                raise ValueError(f"unknown ISO 4217 currency {symbol!r}")
            first = not self.rows["currency"]
            row = {"id": self._next_id("currency"), "name": symbol, "symbol": symbol,
                   "currencyprecision": exponent(symbol), "isbasecurrency": _tf(first),
                   "isinactive": "F"}  # fmt: skip
            self._by_symbol[symbol] = row["id"]
            return self._put("currency", row)

    def add_subsidiary(self, sub_id: str | None, name: str, currency: str, country=None) -> str:
        with self.lock:
            ccy = self.add_currency(currency)
            sub_id = str(sub_id) if sub_id else self._next_id("subsidiary")
            row = {"id": sub_id, "name": str(name), "fullname": str(name), "currency": ccy,
                   "country": country, "parent": None if sub_id == "1" else "1",
                   "iselimination": "F", "isinactive": "F"}  # fmt: skip
            return self._put("subsidiary", row)

    def add_account(self, number: str, name: str | None = None, accttype: str | None = None):
        number = str(number)
        with self.lock:
            if number in self._by_number:
                return self._by_number[number]
            name = name or f"Account {number}"
            kind = accttype or ACCOUNT_TYPES.get(name) or TYPE_BY_DIGIT.get(number[:1], "Other")
            row = {"id": self._next_id("account", ACCOUNT_BASE), "acctnumber": number,
                   "acctname": name, "fullname": f"{number} {name}", "accttype": kind,
                   "issummary": "F", "isinactive": "F"}  # fmt: skip
            self._by_number[number] = row["id"]
            return self._put("account", row)

    def add_year(self, year: int) -> None:
        """The year's period, its quarters and months (if the year is not there yet)."""
        with self.lock:
            if f"{year}-01" in self._by_month:
                return
            fy = self._period(f"FY {year}", dt.date(year, 1, 1), dt.date(year, 12, 31), "year")
            for q in range(4):
                start, end = dt.date(year, 3 * q + 1, 1), self._month_end(year, 3 * q + 3)
                qid = self._period(f"Q{q + 1} {year}", start, end, "quarter", fy)
                for month in range(3 * q + 1, 3 * q + 4):
                    end = self._month_end(year, month)
                    pid = self._period(_month_name(year, month), dt.date(year, month, 1), end,
                                       "month", qid)  # fmt: skip
                    self._by_month[f"{year}-{month:02d}"] = pid

    @staticmethod
    def _month_end(year: int, month: int) -> dt.date:
        return dt.date(year, month, calendar.monthrange(year, month)[1])

    def _period(self, name, start, end, kind, parent=None) -> str:
        row = {"id": self._next_id("accountingperiod"), "periodname": name,
               "startdate": start.isoformat(), "enddate": end.isoformat(),
               "isposting": _tf(kind == "month"), "isquarter": _tf(kind == "quarter"),
               "isyear": _tf(kind == "year"), "isadjust": "F", "isinactive": "F",
               "parent": parent}  # fmt: skip
        return self._put("accountingperiod", row)

    def add_customer(self, entityid: str, externalid=None, companyname=None, subsidiary=None,
                     currency=None) -> str:  # fmt: skip
        entityid = str(entityid)
        externalid = str(externalid) if externalid else entityid
        with self.lock:
            if externalid in self._by_customer:
                return self._by_customer[externalid]
            if subsidiary is not None and str(subsidiary) not in self.rows["subsidiary"]:
                raise ValueError(f"customer {entityid}: unknown subsidiary {subsidiary!r}")
            ccy = self.add_currency(currency) if currency else None
            row = {"id": self._next_id("customer", CUSTOMER_BASE), "entityid": entityid,
                   "externalid": externalid, "companyname": companyname or entityid,
                   "subsidiary": None if subsidiary is None else str(subsidiary),
                   "currency": ccy, "isinactive": "F"}  # fmt: skip
            self._by_customer[externalid] = row["id"]
            return self._put("customer", row)

    def add_named(self, table: str, name: str) -> str:
        with self.lock:
            for row in self.rows[table].values():
                if row["name"] == name:
                    return row["id"]
            return self._put(table, {"id": self._next_id(table), "name": str(name),
                                     "isinactive": "F"})  # fmt: skip

    def add(self, data: dict) -> dict[str, list[str]]:
        """Add records from a JSON-shaped dict (module docstring); their internal ids by kind."""
        if not isinstance(data, dict):
            raise ValueError("master data is a JSON object of lists")
        unknown = set(data) - {"accounts", "currencies", "subsidiaries", "periods", "customers",
                               "departments", "classes", "locations"}  # fmt: skip
        if unknown:
            raise ValueError(f"unknown master data kinds {sorted(unknown)}")
        out: dict[str, list[str]] = {}
        with self.lock:
            for c in data.get("currencies") or ():
                out.setdefault("currencies", []).append(self.add_currency(c))
            for s in data.get("subsidiaries") or ():
                out.setdefault("subsidiaries", []).append(self.add_subsidiary(
                    s.get("id"), s["name"], s["currency"], s.get("country")))  # fmt: skip
            for a in data.get("accounts") or ():
                a = {"acctnumber": a} if isinstance(a, str) else a
                out.setdefault("accounts", []).append(
                    self.add_account(a["acctnumber"], a.get("acctname"), a.get("accttype"))
                )
            for p in data.get("periods") or ():
                self.add_year(int(str(p)[:4]))
                out.setdefault("periods", []).append(self._by_month[f"{str(p)[:4]}-01"])
            for c in data.get("customers") or ():
                c = {"entityid": c} if isinstance(c, str) else c
                out.setdefault("customers", []).append(self.add_customer(
                    c["entityid"], c.get("externalid"), c.get("companyname"),
                    c.get("subsidiary"), c.get("currency")))  # fmt: skip
            for kind, table in (("departments", "department"), ("classes", "classification"),
                                ("locations", "location")):  # fmt: skip
                for name in data.get(kind) or ():
                    out.setdefault(kind, []).append(self.add_named(table, name))
        return out

    # -- lookups ---------------------------------------------------------------------------
    def get(self, table: str, internal_id) -> dict | None:
        with self.lock:
            return self.rows[table].get(str(internal_id))

    def account_id(self, number: str) -> str | None:
        return self._by_number.get(str(number))

    def currency_id(self, symbol: str) -> str | None:
        return self._by_symbol.get(str(symbol).upper())

    def period_id(self, month: str) -> str | None:
        """The posting period of a ``YYYY-MM`` month."""
        return self._by_month.get(month)

    def customer_id(self, externalid: str) -> str | None:
        return self._by_customer.get(str(externalid))

    def period_of(self, day: dt.date) -> dict | None:
        pid = self._by_month.get(f"{day:%Y-%m}")
        return None if pid is None else self.rows["accountingperiod"][pid]

    def precision(self, currency_id) -> int:
        return int(self.rows["currency"][str(currency_id)]["currencyprecision"])

    def snapshot(self) -> tuple[int, dict[str, list[dict]]]:
        with self.lock:
            return self.version, {t: [dict(r) for r in rows.values()]
                                  for t, rows in self.rows.items()}  # fmt: skip


class FiledropMaster:
    """Subsidiaries and customers of a file-drop folder, registered in the master data.

    Reads ``legal_entities*.csv`` (``erp_subsidiary_id``, ``name``, ``functional_currency``,
    ``country``: a subsidiary with that id is updated, a new one added) and ``customers*.csv``
    (every row with an ``erp_customer_id``: a customer whose ``entityid`` and ``externalid``
    are that value, in the subsidiary of its legal entity). :meth:`refresh` re-reads when a
    file changed, so a customer whose ERP id arrives later (the demo's late changes write
    ``customers-late.csv``) is registered before the next request.
    """

    def __init__(self, master: MasterData, folder: str | Path):
        self.master, self.folder = master, Path(folder)
        self._seen: tuple = ()
        self.refresh()

    def _files(self, stem: str) -> list[Path]:
        return sorted(self.folder.glob(f"{stem}.csv")) + sorted(self.folder.glob(f"{stem}-*.csv"))

    def refresh(self) -> None:
        files = self._files("legal_entities") + self._files("customers")
        stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        if stamp == self._seen:
            return
        subsidiary_of: dict[str, str] = {}
        for f in self._files("legal_entities"):
            for row in _rows(f):
                sub = (row.get("erp_subsidiary_id") or "").strip()
                if sub:
                    subsidiary_of[row["entity_id"]] = sub
                    self.master.add_subsidiary(sub, f"{row.get('name')} ({row['entity_id']})",
                                               row["functional_currency"], row.get("country"))  # fmt: skip
        known = self.master.rows["subsidiary"]
        for f in self._files("customers"):
            for row in _rows(f):
                erp_id = (row.get("erp_customer_id") or "").strip()
                if not erp_id:
                    continue
                sub = subsidiary_of.get(row.get("entity_id", ""))
                ccy = (row.get("currency") or "").strip().upper()
                self.master.add_customer(erp_id, erp_id, row.get("name") or None,
                                         sub if sub in known else None,
                                         ccy if ccy in CURRENCIES else None)  # fmt: skip
        self._seen = stamp


def _rows(path: Path):
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):  # a file still being written: not its last row yet
        text = text[: text.rfind("\n") + 1]
    yield from csv.DictReader(io.StringIO(text, newline=""))
