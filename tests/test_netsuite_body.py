"""The NetSuite journalEntry body: exact decimal amounts from minor units, ``{"id"}``
references and the posting period resolved through the internal id mapping, the correlation
id in a custom field or the memo, and journals that cannot be resolved kept back with a
reason (sync_core.erp.netsuite_body, sync_core.erp.internal_ids, sync_core.erp.netsuite_errors)."""

import json
from decimal import Decimal

import pandas as pd
import pytest

from sync_core.erp.config import ErpConfig
from sync_core.erp.internal_ids import InternalIds, parse_date
from sync_core.erp.netsuite_body import (
    Unresolved,
    dumps,
    journal_bodies,
    journal_body,
    line_signature,
    loads,
    to_amount,
    to_minor_units,
)
from sync_core.erp.netsuite_errors import classify, parse_error
from sync_core.erp.rest import unresolved_outcome

IDS = {
    "subsidiaries": {"1": "11", "7": "17"},
    "currencies": {"USD": "1", "JPY": "5", "KWD": "9"},
    "accounts": {"1100": "54", "4000": "61", "2300": "70"},
    "periods": {"2025-03": "183", "2024-02": "170"},
    "customers": {"C-US01-000123": "812"},
}


def config(**defaults) -> ErpConfig:
    return ErpConfig(defaults={"internal_ids": IDS, **defaults})


def lines(amount=10025, currency="USD", eid="US01-INV-in_1-v1", **over) -> list[dict]:
    base = {"external_id": eid, "period": pd.Timestamp("2025-03-01", tz="UTC"),
            "erp_subsidiary_id": "1", "currency": currency, "erp_customer_id": "C-US01-000123",
            "correlation_id": "in_1", "event": "invoice_finalized", "document_id": "in_1",
            "memo": "Invoice finalized in_1", "transaction_date": None}  # fmt: skip
    rows = [
        {**base, "line_no": 1, "erp_account": "1100", "debit": amount, "credit": 0},
        {**base, "line_no": 2, "erp_account": "4000", "debit": 0, "credit": amount,
         "erp_customer_id": None},
    ]  # fmt: skip
    return [{**r, **over} for r in rows]


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(10025, "USD", "100.25"), (500, "JPY", "500"), (1234, "KWD", "1.234"), (7, "USD", "0.07"),
     (10**15, "USD", "10000000000000.00")],
)  # fmt: skip
def test_amounts_are_exact_decimals_of_the_currency(minor, currency, text):
    amount = to_amount(minor, currency)
    assert amount == Decimal(text) and format(amount, "f") == text
    assert to_minor_units(text, currency) == minor
    body = journal_body(lines(minor, currency), InternalIds(config()), "US01")
    raw = dumps(body).decode()
    assert f'"debit":{text},' in raw and f'"credit":{text},' in raw  # a JSON number, no quotes
    assert json.loads(raw, parse_float=Decimal)["line"]["items"][0]["debit"] == Decimal(text)
    assert loads(raw)["line"]["items"][1]["credit"] == Decimal(text)


def test_amount_edges_are_errors_not_roundings():
    with pytest.raises(ValueError, match="more decimals"):
        to_minor_units("100.255", "USD")
    with pytest.raises(ValueError, match="more decimals"):
        to_minor_units("1.5", "JPY")
    with pytest.raises(TypeError):
        to_minor_units(100.25, "USD")  # a float never becomes money
    with pytest.raises(TypeError):
        dumps({"debit": 100.25})
    with pytest.raises(ValueError):
        to_amount(100.5, "USD")


def test_references_and_period_resolved_from_the_mapping():
    body = journal_body(lines(), InternalIds(config()), "US01")
    assert body["externalId"] == "US01-INV-in_1-v1"
    assert body["subsidiary"] == {"id": "11"} and body["currency"] == {"id": "1"}
    assert body["postingPeriod"] == {"id": "183"} and body["tranDate"] == "2025-03-31"
    assert body["memo"] == "Invoice finalized in_1"
    first, second = body["line"]["items"]
    assert first["account"] == {"id": "54"} and first["entity"] == {"id": "812"}
    assert first["debit"] == Decimal("100.25") and "credit" not in first  # one side per line
    assert second["account"] == {"id": "61"} and "entity" not in second
    assert second["credit"] == Decimal("100.25") and "debit" not in second
    assert {"period", "custcol_correlation_id"}.isdisjoint(body)
    # an entity's own block overrides the defaults
    own = ErpConfig(defaults={"internal_ids": IDS},
                    entities={"UK01": {"internal_ids": {"accounts": {"1100": "99"}}}})  # fmt: skip
    uk = journal_body(lines(), InternalIds(own), "UK01")
    assert [i["account"]["id"] for i in uk["line"]["items"]] == ["99", "61"]


def test_leap_month_end_and_the_headers_transaction_date():
    rows = lines(period=pd.Timestamp("2024-02-01", tz="UTC"))
    assert journal_body(rows, InternalIds(config()), "US01")["tranDate"] == "2024-02-29"
    rows = lines(transaction_date=pd.Timestamp("2025-03-14"))
    assert journal_body(rows, InternalIds(config()), "US01")["tranDate"] == "2025-03-14"


def test_correlation_in_the_custom_field_or_else_the_memo():
    ids = InternalIds(config(correlation_field="custcol_sync_correlation"))
    items = journal_body(lines(), ids, "US01")["line"]["items"]
    assert [i["custcol_sync_correlation"] for i in items] == ["in_1", "in_1"]
    assert items[0]["memo"] == "Invoice finalized in_1"
    items = journal_body(lines(), InternalIds(config()), "US01")["line"]["items"]
    assert [i["memo"] for i in items] == ["Invoice finalized in_1 [corr in_1]"] * 2
    assert not any(k.startswith("custcol") for i in items for k in i)


def test_dimensions_from_config_and_line_values():
    ids = {**IDS, "department": "3", "departments": {"Sales": "4"}, "classes": {"SaaS": "8"}}
    cfg = ErpConfig(defaults={"internal_ids": ids})
    rows = lines()
    rows[1]["department"], rows[1]["class"] = "Sales", "SaaS"
    first, second = journal_body(rows, InternalIds(cfg), "US01")["line"]["items"]
    assert first["department"] == {"id": "3"} and "class" not in first
    assert second["department"] == {"id": "4"} and second["class"] == {"id": "8"}


def test_unresolved_references_become_a_rejected_outcome_with_the_reason():
    rows = lines()
    rows[1]["erp_account"] = "9999"
    rows[0]["erp_customer_id"] = "C-NEW"
    got = journal_body(rows, InternalIds(config()), "US01")
    assert isinstance(got, Unresolved)
    assert (got.reason, got.owner) == ("invalid_reference", "master_data")
    assert got.missing == ("customer 'C-NEW' (line 1) has no NetSuite internal id",
                           "account '9999' (line 2) has no NetSuite internal id")  # fmt: skip
    both = lines()
    both[1]["erp_customer_id"] = both[0]["erp_customer_id"] = "C-NEW"
    assert journal_body(both, InternalIds(config()), "US01").missing == (
        "customer 'C-NEW' (lines 1, 2) has no NetSuite internal id",)  # once, with its lines  # fmt: skip
    no_period = journal_body(lines(period=pd.Timestamp("2026-01-01", tz="UTC")),
                             InternalIds(config()), "US01")  # fmt: skip
    assert no_period.missing == ("no NetSuite accounting period starts on 2026-01-01",)
    out = unresolved_outcome(got)
    assert (out.status, out.error_code, out.reason, out.owner, out.attempts) == (
        "rejected", "UNRESOLVED", "invalid_reference", "master_data", 0)  # fmt: skip
    assert "'9999'" in out.message and "'C-NEW'" in out.message


def test_a_journal_with_no_transaction_currency_amount_is_integrations_not_master_data():
    # an FX journal carries functional amounts only: nothing NetSuite can take, and no master
    # data fixes it, so it waits for the integration team (a replay on customer ids never helps)
    got = journal_body(lines(0), InternalIds(config()), "US01")
    assert isinstance(got, Unresolved)
    assert (got.reason, got.owner) == ("invalid_content", "integration")
    assert got.missing == ("no line has an amount in the transaction currency",)


class FakeSuiteQL:
    """SuiteQL answers of a small account, and the queries asked."""

    def __init__(self):
        self.queries = []

    def __call__(self, q):
        self.queries.append(q)
        if "FROM accountingperiod" in q:
            return [
                {"id": "201", "periodname": "Mar 2025", "startdate": "3/1/2025",
                 "enddate": "3/31/2025", "closed": "T", "isposting": "T"},
                {"id": "200", "periodname": "Q1 2025", "startdate": "1/1/2025",
                 "enddate": "3/31/2025", "closed": "F", "isposting": "F"},
                {"id": "202", "periodname": "Apr 2025", "startdate": "2025-04-01",
                 "enddate": "2025-04-30", "closed": "F", "isposting": "T"},
            ]  # fmt: skip
        if "FROM account " in q:
            return [{"id": "540", "acctnumber": "1100"}, {"id": "610", "acctnumber": "4000"}]
        if "FROM currency" in q:
            return [{"id": "2", "symbol": "USD"}]
        if "FROM subsidiary" in q:
            return [{"id": "1", "name": "Demo Cloud Inc."}]
        if "FROM customer" in q:
            return [{"id": "900", "entityid": "C-US01-000123", "externalid": None}]
        return []


def test_suiteql_lookups_fill_what_config_lacks_once():
    fake = FakeSuiteQL()
    ids = InternalIds(ErpConfig(), fake)
    april = lines(period=pd.Timestamp("2025-04-01", tz="UTC"))
    (body,) = journal_bodies(pd.DataFrame(april), ids, "US01")
    assert body["subsidiary"] == {"id": "1"} and body["currency"] == {"id": "2"}
    assert body["postingPeriod"] == {"id": "202"}
    assert [i["account"]["id"] for i in body["line"]["items"]] == ["540", "610"]
    assert body["line"]["items"][0]["entity"] == {"id": "900"}
    asked = len(fake.queries)
    assert asked == 5  # one batched query per kind, and the periods once
    assert "acctnumber IN ('1100', '4000')" in next(q for q in fake.queries if "account " in q)
    journal_body(april, ids, "US01")
    assert len(fake.queries) == asked  # kept for the client's lifetime
    # March is closed in NetSuite: not sent, finance's
    march = journal_body(lines(), ids, "US01")
    assert (march.reason, march.owner) == ("period_closed", "finance")
    assert march.missing == ("NetSuite accounting period Mar 2025 (2025-03) is closed",)
    # the reverse maps serve the GL read back
    assert ids.key_of("accounts", "540") == "1100" and ids.key_of("periods", "202") == "2025-04"
    assert ids.key_of("currencies", "2") == "USD"


def test_dates_of_suiteql():
    assert parse_date("3/1/2025").isoformat() == "2025-03-01"
    assert parse_date("2025-03-01 00:00:00").isoformat() == "2025-03-01"
    assert parse_date("") is None


def test_line_signature_compares_amounts_and_accounts_not_formats():
    body = journal_body(lines(), InternalIds(config()), "US01")
    stored = {"line": {"items": [
        {"account": {"id": "61", "refName": "4000 Revenue"}, "credit": Decimal("100.250")},
        {"account": {"id": "54"}, "debit": Decimal("100.25"), "credit": 0},
    ]}}  # fmt: skip
    assert line_signature(stored["line"]["items"]) == line_signature(body["line"]["items"])
    stored["line"]["items"][0]["credit"] = Decimal("100.24")
    assert line_signature(stored["line"]["items"]) != line_signature(body["line"]["items"])


@pytest.mark.parametrize(
    ("status", "code", "detail", "reason", "owner", "transient"),
    [
        (400, "USER_ERROR", "The accounting period Mar 2025 is closed.", "period_closed",
         "finance", False),
        (400, "USER_ERROR", "The accounting period Mar 2025 is locked for A/R.", "period_locked",
         "finance", False),
        (400, "INVALID_KEY_OR_REF", "Invalid account reference key 9999.", "invalid_reference",
         "master_data", False),
        (400, "USER_ERROR", "The debit and credit totals must be equal.", "unbalanced",
         "integration", False),
        (401, "INVALID_LOGIN", "Invalid login attempt.", "invalid_login", "integration", False),
        (403, "INSUFFICIENT_PERMISSION", "Permission Violation.", "insufficient_permission",
         "integration", False),
        (400, "INVALID_CONTENT", "Unknown field 'period'.", "invalid_content", "integration",
         False),
        (429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded.",
         "erp_unavailable", "integration", True),
        (500, "UNEXPECTED_ERROR", "An unexpected error occurred.", "erp_unavailable",
         "integration", True),
    ],
)  # fmt: skip
def test_netsuite_errors_map_to_reasons_and_owners(status, code, detail, reason, owner,
                                                   transient):  # fmt: skip
    body = {"type": "x", "title": "Bad Request", "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code,
                                "o:errorPath": "line.items[1].account"}]}  # fmt: skip
    v = classify(status, parse_error(status, body))
    assert (v.reason, v.owner, v.transient, v.code) == (reason, owner, transient, code)
    assert v.message == f"{code} at line.items[1].account: {detail}"


def test_a_subsidiary_named_by_text_is_looked_up_by_name_only():
    # NetSuite's id column is numeric: 'US01' compared with it would fail the whole query
    fake = FakeSuiteQL()
    ids = InternalIds(ErpConfig(), fake)
    journal_body(lines(erp_subsidiary_id="US01"), ids, "US01")
    (q,) = [q for q in fake.queries if "FROM subsidiary" in q]
    assert "name IN ('US01')" in q and "id IN" not in q.replace("SELECT id", "")
    journal_body(lines(erp_subsidiary_id="7"), ids, "US01")
    (_, q7) = [q for q in fake.queries if "FROM subsidiary" in q]
    assert "id IN ('7')" in q7 and "name IN ('7')" in q7
