"""A NetSuite client written elsewhere, the ``netsuite`` package (0.12.0), against the sandbox
ERP with TBA: it upserts a journal (PUT eid with replace=line), reads it back and runs
SuiteQL; then the project's own client posts the same journal from posting-log lines and the
``netsuite`` client reads back a record identical to the one it wrote itself.

The package builds ``https://{account}.suitetalk.api.netsuite.com/services/rest{subpath}``;
:class:`SandboxRestApi` overrides its one URL hook, ``_make_url``, with the sandbox's REST base.
Its TBA is authlib's ``OAuth1Auth`` (HMAC-SHA256, ``realm`` = the account id, an
``oauth_body_hash`` on bodies), its writes send ``X-NetSuite-PropertyNameValidation: error``.
"""

import asyncio
import warnings
from decimal import Decimal

import pandas as pd
import pytest

with warnings.catch_warnings():  # authlib's httpx integration warns about itself on import
    import authlib.deprecate  # noqa: F401 - first: it adds an "always" filter of its own

    warnings.simplefilter("ignore")
    from netsuite import Config, TokenAuth
    from netsuite.rest_api import NetSuiteRestApi

from sandboxes.erp_server import ErpSandbox
from sync_core.erp.auth import TokenBasedAuth
from sync_core.erp.config import load_erp_config
from sync_core.erp.rest import RestErpClient

CUSTOMER = "C-US01-000123"
JOURNAL = "/record/v1/journalEntry"


class SandboxRestApi(NetSuiteRestApi):
    """The ``netsuite`` package's REST API at another base URL (its ``_make_url`` hook)."""

    def __init__(self, config: Config, base_url: str, **options):
        super().__init__(config, **options)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}{subpath}"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def erp(tmp_path):
    master = {"customers": [{"entityid": CUSTOMER, "subsidiary": "1"}]}
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=master) as sandbox:
        yield sandbox


@pytest.fixture
def api(erp):
    c = erp.credentials
    auth = TokenAuth(consumer_key=c.consumer_key, consumer_secret=c.consumer_secret,
                     token_id=c.token_id, token_secret=c.token_secret)  # fmt: skip
    return SandboxRestApi(Config(account=c.account, auth=auth), erp.url)


def documented_body(erp, eid: str) -> dict:
    m = erp.master
    return {"externalId": eid, "subsidiary": {"id": "1"}, "currency": {"id": m.currency_id("USD")},
            "tranDate": "2025-03-31", "postingPeriod": {"id": m.period_id("2025-03")},
            "memo": f"Invoice {eid}", "line": {"items": [
                {"account": {"id": m.account_id("1100")}, "debit": 100.25, "memo": f"Invoice {eid}",
                 "entity": {"id": m.customer_id(CUSTOMER)}, "custcol_sync_correlation": f"corr-{eid}"},
                {"account": {"id": m.account_id("4000")}, "credit": 100.25, "memo": f"Invoice {eid}",
                 "custcol_sync_correlation": f"corr-{eid}"},
            ]}}  # fmt: skip


def comparable(record: dict) -> dict:
    """A record without what differs between two journals of the same content."""
    drop = {"links", "id", "externalId", "tranId", "createdDate", "lastModifiedDate", "memo"}
    out = {k: v for k, v in record.items() if k not in drop}
    out["line"] = [{k: v for k, v in item.items() if k not in ("links", "memo",
                                                               "custcol_sync_correlation")}
                   for item in record["line"]["items"]]  # fmt: skip
    return out


def write_body(record: dict, eid: str) -> dict:
    """The write body of a read record: references as ``{"id"}``, the same amounts."""

    def ref(v):
        return {"id": v["id"]} if isinstance(v, dict) and "id" in v else v

    keep = ("subsidiary", "currency", "tranDate", "postingPeriod", "memo")
    items = [{k: ref(v) for k, v in item.items() if k not in ("links", "line")}
             for item in record["line"]["items"]]  # fmt: skip
    return {"externalId": eid, **{k: ref(record[k]) for k in keep}, "line": {"items": items}}


def test_the_netsuite_package_upserts_reads_back_and_queries(erp, api):
    eid = "US01-INV-ns_1-v1"
    url = f"{JOURNAL}/eid:{eid}"
    put = run(api.request("PUT", url, json=documented_body(erp, eid), params={"replace": "line"}))
    assert put.status_code == 204, put.text
    internal_id = put.headers["location"].rsplit("/", 1)[1]
    again = run(api.request("PUT", url, json=documented_body(erp, eid), params={"replace": "line"}))
    assert again.status_code == 204 and again.headers["location"].endswith(f"/{internal_id}")
    record = run(api.get(url, params={"expandSubResources": "true"}))
    assert record["id"] == internal_id and record["postingPeriod"]["refName"] == "Mar 2025"
    items = record["line"]["items"]
    assert [(i["account"]["refName"], i.get("debit"), i.get("credit")) for i in items] == [
        ("1100 AccountsReceivable", 100.25, None), ("4000 Revenue", None, 100.25)]  # fmt: skip
    assert items[0]["entity"]["id"] == erp.master.customer_id(CUSTOMER)
    assert erp.journal(eid)["line"]["items"][0]["debit"] == Decimal("100.25")
    assert erp.journal(eid)["version"] == 2  # replace=line: two writes, still two lines
    page = run(api.suiteql("SELECT t.externalid, l.id, l.debitforeignamount AS d, a.acctnumber "
                           "FROM transaction t JOIN transactionline l ON l.transaction = t.id "
                           "JOIN transactionaccountingline tal ON tal.transaction = t.id AND "
                           "tal.transactionline = l.id JOIN account a ON a.id = tal.account "
                           "ORDER BY l.id", limit=1))  # fmt: skip
    assert (page["count"], page["hasMore"], page["totalResults"]) == (1, True, 2)
    assert page["items"][0] == {"links": [], "externalid": eid, "id": "0", "d": "100.25",
                                "acctnumber": "1100"}  # fmt: skip
    rest = run(api.suiteql("SELECT acctnumber FROM account ORDER BY id", limit=1, offset=1))
    assert rest["offset"] == 1 and rest["items"][0]["acctnumber"] == "1100"
    # its strict header: an unknown field is refused with its path
    bad = run(api.request("PATCH", url, json={"period": "2025-03"}))
    assert bad.status_code == 400
    assert bad.json()["o:errorDetails"][0]["o:errorPath"] == "period"
    assert {r["auth"] for r in erp.requests()} == {"oauth"}


def test_the_project_client_posts_what_the_netsuite_client_reads_as_its_own(erp, api):
    c = erp.credentials
    auth = TokenBasedAuth(c.account, c.consumer_key, c.consumer_secret, c.token_id,
                          c.token_secret)  # fmt: skip
    eid = "US01-INV-in_1-v1"
    lines = pd.DataFrame({
        "external_id": eid, "period": pd.Timestamp("2025-03-01", tz="UTC"),
        "erp_subsidiary_id": "1", "currency": "USD", "erp_account": ["1100", "4000"],
        "debit": [10025, 0], "credit": [0, 10025], "erp_customer_id": [CUSTOMER, None],
        "correlation_id": f"corr-{eid}", "event": "invoice_finalized", "document_id": "in_1",
        "memo": f"Invoice {eid}", "transaction_date": None, "line_no": [1, 2],
    })  # fmt: skip
    with RestErpClient(erp.url, auth=auth, config=load_erp_config(), timeout_s=5.0) as client:
        (out,) = client.post_journals("US01", lines)
    assert (out.status, out.http_status) == ("posted", 204), out
    theirs = run(api.get(f"{JOURNAL}/eid:{eid}", params={"expandSubResources": "true"}))
    assert theirs["id"] == out.erp_internal_id
    mine_eid = "US01-INV-in_1-v1-ns"  # the netsuite client writes the same content itself
    put = run(api.request("PUT", f"{JOURNAL}/eid:{mine_eid}", json=write_body(theirs, mine_eid),
                          params={"replace": "line"}))  # fmt: skip
    assert put.status_code == 204, put.text
    mine = run(api.get(f"{JOURNAL}/eid:{mine_eid}", params={"expandSubResources": "true"}))
    assert comparable(mine) == comparable(theirs)
    documented = documented_body(erp, "US01-INV-doc-v1")
    run(api.request("PUT", f"{JOURNAL}/eid:US01-INV-doc-v1", json=documented,
                    params={"replace": "line"}))  # fmt: skip
    doc = run(api.get(f"{JOURNAL}/eid:US01-INV-doc-v1", params={"expandSubResources": "true"}))
    assert comparable(theirs) == comparable(doc)  # the project's body is the documented one
    sums = run(api.suiteql("SELECT t.externalid, SUM(l.debitforeignamount) AS d FROM transaction "
                           "t JOIN transactionline l ON l.transaction = t.id GROUP BY "
                           "t.externalid ORDER BY t.externalid"))  # fmt: skip
    assert {r["externalid"]: r["d"] for r in sums["items"]} == {
        eid: "100.25", mine_eid: "100.25", "US01-INV-doc-v1": "100.25"}  # fmt: skip
