"""NetSuite authentication (sync_core.erp.auth): the OAuth 2.0 client assertion verified with
the certificate's public key, the access token kept, refreshed before it expires and after a
401, one fetch for many threads; OAuth 1.0 TBA headers signed HMAC-SHA256 as RFC 5849 says;
both schemes through ErpResource against the sandbox ERP, with no secret in a repr, a log
record or an error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import threading
import time
from urllib.parse import parse_qsl, quote, urlsplit

import dagster as dg
import jwt
import pandas as pd
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from resources.erp import ErpResource
from sandboxes.erp_server import ErpSandbox
from sync_core.erp.auth import (
    AuthError,
    OAuth2ClientCredentials,
    TokenBasedAuth,
    netsuite_base_url,
    netsuite_realm,
)
from sync_core.erp.rest import RestErpClient

TOKEN_URL = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
    return private, public.decode()


class Clock:
    def __init__(self, t: float = 1_750_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeTokenEndpoint:
    """Stands in for the auth's HTTP session: answers the token POST, records the forms."""

    def __init__(self, status: int = 200, body: dict | None = None, delay_s: float = 0.0):
        self.forms: list[dict] = []
        self.status, self.body, self.delay_s = status, body, delay_s
        self._lock = threading.Lock()

    def post(self, url, data=None, timeout=None, headers=None):
        time.sleep(self.delay_s)
        with self._lock:
            self.forms.append({"url": url, **data})
            n = len(self.forms)
        resp = requests.Response()
        resp.status_code = self.status
        body = self.body or {"access_token": f"access-{n}", "expires_in": "3600",
                             "token_type": "bearer"}  # fmt: skip
        resp._content = requests.compat.json.dumps(body).encode()
        return resp


def oauth2(keypair, clock=None, endpoint=None, **kw) -> OAuth2ClientCredentials:
    auth = OAuth2ClientCredentials(TOKEN_URL, "client-abc", "cert-123", keypair[0],
                                   clock=clock or Clock(), **kw)  # fmt: skip
    auth._http = endpoint or FakeTokenEndpoint()
    return auth


def test_assertion_claims_verify_with_the_public_key(keypair):
    clock = Clock(1_750_000_000)
    auth = oauth2(keypair, clock)
    token = auth.assertion()
    header = jwt.get_unverified_header(token)
    assert header == {"typ": "JWT", "alg": "PS256", "kid": "cert-123"}
    claims = jwt.decode(token, keypair[1], algorithms=["PS256"], audience=TOKEN_URL,
                        options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert claims == {"iss": "client-abc", "scope": "rest_webservices", "aud": TOKEN_URL,
                      "iat": 1_750_000_000, "exp": 1_750_000_600}  # fmt: skip
    assert claims["exp"] - claims["iat"] <= 3600
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["PS256"], audience=TOKEN_URL,
                   options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    with pytest.raises(ValueError):
        oauth2(keypair, assertion_lifetime_s=3601)


def test_token_request_form_and_refresh_before_expiry(keypair):
    clock, endpoint = Clock(), FakeTokenEndpoint()
    auth = oauth2(keypair, clock, endpoint)
    assert auth.token() == "access-1"
    (form,) = endpoint.forms
    assert form["url"] == TOKEN_URL and form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")  # fmt: skip
    assert jwt.decode(form["client_assertion"], keypair[1], algorithms=["PS256"],
                      audience=TOKEN_URL, options={"verify_exp": False,
                                                   "verify_iat": False})["iss"] == "client-abc"  # fmt: skip
    clock.t += 3600 - 300 - 1  # still more than the 5-minute margin left: kept
    assert auth.token() == "access-1" and len(endpoint.forms) == 1
    clock.t += 2  # within 5 minutes of expiry: a new assertion, a new token
    assert auth.token() == "access-2" and len(endpoint.forms) == 2
    assert endpoint.forms[0]["client_assertion"] != endpoint.forms[1]["client_assertion"]


def test_a_401_drops_the_refused_token_once(keypair):
    endpoint = FakeTokenEndpoint()
    auth = oauth2(keypair, endpoint=endpoint)
    sent = requests.Request("GET", "https://x/services/rest/record/v1/journalEntry/1").prepare()
    auth(sent)
    assert sent.headers["Authorization"] == "Bearer access-1"
    assert auth.refused(sent) is True  # retry with a new token
    assert auth.token() == "access-2"
    assert auth.refused(sent) is True  # the stale request's token is not the current one ...
    assert auth.token() == "access-2" and len(endpoint.forms) == 2  # ... so it is kept


def test_threads_share_one_token_fetch(keypair):
    endpoint = FakeTokenEndpoint(delay_s=0.05)
    auth = oauth2(keypair, endpoint=endpoint)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(auth.token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["access-1"] * 8 and len(endpoint.forms) == 1


def test_token_endpoint_refusal_is_an_auth_error_without_secrets(keypair):
    body = {"error": "invalid_client", "error_description": "unknown client or certificate"}
    auth = oauth2(keypair, endpoint=FakeTokenEndpoint(401, body))
    with pytest.raises(AuthError) as err:
        auth.token()
    v = err.value.verdict
    assert (v.reason, v.owner, v.transient, err.value.status) == (
        "invalid_login", "integration", False, 401)  # fmt: skip
    assert v.message == "invalid_client: unknown client or certificate"
    key_line = keypair[0].splitlines()[1]
    assert key_line not in str(err.value) and key_line not in repr(auth)
    down = oauth2(keypair, endpoint=FakeTokenEndpoint(503, {"title": "Service Unavailable"}))
    with pytest.raises(AuthError) as err:
        down.token()
    assert err.value.verdict.transient


def _oauth_params(header) -> dict[str, str]:
    header = header.decode() if isinstance(header, bytes) else header
    assert header.startswith("OAuth ")
    return {k: requests.utils.unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}


def _rfc5849_signature(method: str, url: str, params: dict, key: str) -> str:
    """RFC 5849 section 3.4: base string of the method, the base URI and the sorted encoded
    parameters (query and oauth_*, not realm or the signature), HMAC-SHA256 with ``key``."""
    enc = lambda s: quote(str(s), safe="~")  # noqa: E731
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True) + [
        (k, v) for k, v in params.items() if k not in ("realm", "oauth_signature")
    ]
    normalized = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted((enc(k), enc(v))
                                                                  for k, v in pairs))  # fmt: skip
    base = "&".join([method.upper(), enc(f"{parts.scheme}://{parts.netloc}{parts.path}"),
                     enc(normalized)])  # fmt: skip
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_tba_header_shape_and_signature():
    auth = TokenBasedAuth("1234567-sb1", "ck-1", "cs-2", "tk-3", "ts-4")
    url = f"{netsuite_base_url('1234567_SB1')}/query/v1/suiteql?limit=1000&offset=0"
    assert url.startswith("https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/")
    first = requests.Request("POST", url, data=b'{"q":"SELECT 1"}',
                             headers={"Content-Type": "application/json"}).prepare()  # fmt: skip
    second = first.copy()
    auth(first)
    time.sleep(0.001)
    auth(second)
    p = _oauth_params(first.headers["Authorization"])
    assert set(p) == {"realm", "oauth_consumer_key", "oauth_token", "oauth_signature_method",
                      "oauth_timestamp", "oauth_nonce", "oauth_version", "oauth_signature"}  # fmt: skip
    assert p["realm"] == netsuite_realm("1234567-sb1") == "1234567_SB1"
    assert (p["oauth_consumer_key"], p["oauth_token"]) == ("ck-1", "tk-3")
    assert (p["oauth_signature_method"], p["oauth_version"]) == ("HMAC-SHA256", "1.0")
    assert abs(int(p["oauth_timestamp"]) - time.time()) < 60
    assert p["oauth_signature"] == _rfc5849_signature("POST", url, p, "cs-2&ts-4")
    assert _oauth_params(second.headers["Authorization"])["oauth_nonce"] != p["oauth_nonce"]
    assert "cs-2" not in repr(auth) and "ts-4" not in repr(auth) and "ck-1" not in repr(auth)


# --------------------------------------------------------------------------------------------
# against the sandbox ERP: the resource from environment variables, no secret anywhere


def _lines(eid: str) -> pd.DataFrame:
    return pd.DataFrame({
        "external_id": eid, "period": pd.Timestamp("2025-03-01", tz="UTC"),
        "erp_subsidiary_id": "1", "currency": "USD", "erp_account": ["1100", "4000"],
        "debit": [10025, 0], "credit": [0, 10025], "erp_customer_id": None,
        "correlation_id": eid, "event": "invoice_finalized", "document_id": eid,
        "memo": f"Invoice {eid}", "transaction_date": None, "line_no": [1, 2],
    })  # fmt: skip


def test_a_canary_secret_never_shows_in_logs_reprs_or_errors(tmp_path, monkeypatch, caplog,
                                                            keypair):  # fmt: skip
    caplog.set_level(logging.DEBUG)  # everything a DEBUG root logger would print
    texts: list[str] = []
    with ErpSandbox(tmp_path / "erp.sqlite") as erp:
        c = erp.credentials
        env = {"SYNC_ERP_CLIENT_ID": c.client_id, "SYNC_ERP_CERTIFICATE_ID": c.certificate_id,
               "SYNC_ERP_PRIVATE_KEY": c.private_key_pem.replace("\n", "\\n"),  # one line
               "SYNC_NETSUITE_ACCOUNT": c.account, "SYNC_ERP_CONSUMER_KEY": c.consumer_key,
               "SYNC_ERP_CONSUMER_SECRET": c.consumer_secret, "SYNC_ERP_TOKEN_ID": c.token_id,
               "SYNC_ERP_TOKEN_SECRET": c.token_secret}  # fmt: skip
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        canaries = [c.consumer_key, c.consumer_secret, c.token_id, c.token_secret,
                    *[ln for ln in c.private_key_pem.splitlines() if "PRIVATE KEY" not in ln]]  # fmt: skip
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        for scheme in ("oauth2", "tba"):
            resource = ErpResource(
                target="rest", ledger_url=url, rest_base_url=erp.url, rest_auth=scheme,
                netsuite_account=dg.EnvVar("SYNC_NETSUITE_ACCOUNT"),
                oauth_client_id=dg.EnvVar("SYNC_ERP_CLIENT_ID"),
                oauth_certificate_id=dg.EnvVar("SYNC_ERP_CERTIFICATE_ID"),
                oauth_private_key=dg.EnvVar("SYNC_ERP_PRIVATE_KEY"),
                tba_consumer_key=dg.EnvVar("SYNC_ERP_CONSUMER_KEY"),
                tba_consumer_secret=dg.EnvVar("SYNC_ERP_CONSUMER_SECRET"),
                tba_token_id=dg.EnvVar("SYNC_ERP_TOKEN_ID"),
                tba_token_secret=dg.EnvVar("SYNC_ERP_TOKEN_SECRET"),
            )  # fmt: skip
            live = resource.process_config_and_initialize()
            texts += [repr(resource), repr(live), str(live)]
            with live.rest_client() as client:
                (out,) = client.post_journals("US01", _lines(f"E-{scheme}"))
                assert out.status == "posted", out
                texts += [repr(client), repr(client.auth), str(out)]
                if scheme == "oauth2":
                    canaries.append(client.auth.token())  # the access token is a secret too
        # refusals: a key that is not the certificate's, a wrong TBA secret, a missing setting
        wrong = OAuth2ClientCredentials(erp.token_url, c.client_id, c.certificate_id,
                                        keypair[0])  # fmt: skip
        with pytest.raises(AuthError) as err:
            wrong.token()
        texts.append(str(err.value))
        bad = TokenBasedAuth(c.account, c.consumer_key, "0" * 64, c.token_id, c.token_secret)
        with RestErpClient(erp.url, auth=bad) as client:
            (out,) = client.post_many([{"externalId": "E-bad", "line": {"items": []}}])
        assert (out.status, out.reason, out.http_status) == ("rejected", "invalid_login", 401)
        texts += [str(out), repr(bad)]
        monkeypatch.delenv("SYNC_ERP_TOKEN_SECRET")
        partial = ErpResource(target="rest", ledger_url=url, rest_base_url=erp.url,
                              rest_auth="tba", netsuite_account=c.account,
                              tba_consumer_key=c.consumer_key,
                              tba_consumer_secret=c.consumer_secret, tba_token_id=c.token_id)  # fmt: skip
        with pytest.raises(dg.Failure) as failure:
            partial.rest_client()
        assert "SYNC_ERP_TOKEN_SECRET" in str(failure.value)
        texts.append(str(failure.value))
    texts.append(caplog.text)
    assert "journalEntry" in caplog.text  # the DEBUG records were captured
    everything = "\n".join(texts)
    leaked = [s[:6] + "..." for s in canaries if s and s in everything]
    assert not leaked, leaked
