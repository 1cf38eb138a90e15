"""The sandbox ERP's authentication: NetSuite's OAuth 2.0 client credentials and OAuth 1.0 TBA.

:class:`SandboxAuth` configures the account and its credentials (public keys and shared
secrets are configuration; nothing here is logged, repr'd or put in an answer):

- **OAuth 2.0 client credentials** (``oauth2_clients``: client id -> (certificate id, public
  key or certificate PEM)): ``POST /services/rest/auth/oauth2/v1/token`` with
  ``grant_type=client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:
  client-assertion-type:jwt-bearer`` and ``client_assertion`` a JWT whose header names the
  certificate (``kid``) and an algorithm NetSuite takes (PS256/384/512, ES256/384/512; RS256
  is refused), whose ``iss`` is the client id, ``aud`` the token URL, ``scope`` (comma or
  space separated, or a list) includes ``rest_webservices``, and ``exp`` is at most 3600 s
  after ``iat`` and not past. The answer is an opaque ``access_token`` with ``expires_in``
  (``token_ttl_s``, a string as NetSuite sends it) and ``token_type: bearer``; a refused
  assertion is ``400 {"error": "invalid_grant"}`` (``invalid_client`` 401 for an unknown client
  or certificate, ``invalid_request`` / ``unsupported_grant_type`` 400 for a malformed call).
- **OAuth 1.0 TBA** (``tba``: (consumer key, token id) -> (consumer secret, token secret)):
  ``Authorization: OAuth realm="<account>", oauth_consumer_key, oauth_token,
  oauth_signature_method="HMAC-SHA256", oauth_timestamp, oauth_nonce, oauth_version="1.0",
  oauth_signature``, the signature recomputed with oauthlib over the RFC 5849 base string
  (method, URL as requested, query and oauth parameters; a form body's parameters; an
  ``oauth_body_hash``, as authlib sends, is signed like any oauth parameter and checked
  against the body). The realm must be the account id; a nonce (6 to 64 letters and digits)
  is accepted once per consumer key and token; a timestamp more than ``timestamp_skew_s``
  away from now is refused.

Every refused record or query request is ``401 INVALID_LOGIN`` with NetSuite's detail; a
refused bearer token also carries ``WWW-Authenticate: Bearer realm=..., error="invalid_token"``.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from types import SimpleNamespace
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from sandboxes.erp_server.wire import Response, json_response, one

TOKEN_PATH = "/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
MAX_ASSERTION_S = 3600
NONCE = re.compile(r"[A-Za-z0-9]{6,64}")
INVALID_LOGIN = ("Invalid login attempt. For more details, see the Login Audit Trail in the "
                 "NetSuite UI at Setup > Users/Roles > User Management > View Login Audit "
                 "Trail.")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SandboxAuth:
    """The account id and the credentials the sandbox accepts (module docstring)."""

    account: str = "TSTDRV123"
    oauth2_clients: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    tba: Mapping[tuple[str, str], tuple[str, str]] = dataclasses.field(
        default_factory=dict, repr=False
    )
    token_ttl_s: int = 3600
    timestamp_skew_s: int = 300

    def __repr__(self) -> str:
        return (f"SandboxAuth(account={self.account!r}, oauth2_clients={sorted(self.oauth2_clients)}, "
                f"tba_tokens={len(self.tba)}, token_ttl_s={self.token_ttl_s})")  # fmt: skip


def _public_key(pem: str):
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


class Authenticator:
    """Issued access tokens and seen nonces of one sandbox; thread-safe."""

    def __init__(self, config: SandboxAuth):
        self.config = config
        self._keys = {cid: (kid, _public_key(pem)) for cid, (kid, pem)
                      in config.oauth2_clients.items()}  # fmt: skip
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expires at)
        self._nonces: set[tuple[str, str, str]] = set()  # seen within the window
        self._nonce_times: collections.deque = collections.deque()  # (seen at, nonce key)
        self._lock = threading.Lock()

    # -- OAuth 2.0 token endpoint ----------------------------------------------------------
    def token(self, form: bytes, token_url: str, now: float | None = None) -> Response:
        now = time.time() if now is None else now
        params = dict(parse_qsl(form.decode("utf-8", "replace"), keep_blank_values=True))
        if params.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "grant_type is client_credentials")
        assertion = params.get("client_assertion")
        if params.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return _oauth_error(400, "invalid_request", "a jwt-bearer client_assertion is needed")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _oauth_error(400, "invalid_request", "the client_assertion is not a JWT")
        client = self._keys.get(str(claims.get("iss")))
        if client is None or header.get("kid") != client[0]:
            return _oauth_error(401, "invalid_client", "unknown client or certificate")
        if header.get("alg") not in ALGORITHMS:
            return _oauth_error(400, "invalid_grant", f"alg must be one of {ALGORITHMS}")
        try:
            claims = jwt.decode(assertion, client[1], algorithms=[header["alg"]],
                                audience=token_url, issuer=claims["iss"],
                                options={"require": ["iss", "aud", "exp", "iat", "scope"]})  # fmt: skip
        except jwt.PyJWTError as exc:
            return _oauth_error(
                400, "invalid_grant", f"the assertion is refused ({type(exc).__name__})"
            )
        scope = claims["scope"]
        scopes = scope if isinstance(scope, list) else re.split(r"[,\s]+", str(scope))
        if "rest_webservices" not in scopes:
            return _oauth_error(400, "invalid_grant", "scope must include rest_webservices")
        if not 0 < claims["exp"] - claims["iat"] <= MAX_ASSERTION_S:
            return _oauth_error(400, "invalid_grant", "exp must be within 3600 s after iat")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (claims["iss"], now + self.config.token_ttl_s)
        return json_response(200, {"access_token": token, "token_type": "bearer",
                                   "expires_in": str(self.config.token_ttl_s)})  # fmt: skip

    # -- every other request ---------------------------------------------------------------
    def check(self, method: str, url: str, headers, body: bytes,
              now: float | None = None) -> tuple[Response | None, str]:  # fmt: skip
        """``(None, scheme)`` when the request is authenticated, else ``(401, reason)``."""
        now = time.time() if now is None else now
        value = headers.get("Authorization") or ""
        scheme = value.split(" ", 1)[0].lower()
        if scheme == "bearer":
            reason = self._bearer(value[7:].strip(), now)
        elif scheme == "oauth":
            reason = self._tba(method, url, headers, body, value, now)
        else:
            reason = "no Authorization"
        if reason is None:
            return None, scheme
        extra = {}
        if scheme == "bearer":
            extra["WWW-Authenticate"] = (f'Bearer realm="{self.config.account}", '
                                         'error="invalid_token", error_description="Invalid login attempt."')  # fmt: skip
        return one(401, "INVALID_LOGIN", INVALID_LOGIN, headers=extra), reason

    def _bearer(self, token: str, now: float) -> str | None:
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return "unknown access token"
        return None if issued[1] > now else "expired access token"

    def _tba(self, method, url, headers, body: bytes, value: str, now: float) -> str | None:
        try:
            params = {k: oauth_utils.unescape(v) for k, v in
                      oauth_utils.parse_authorization_header(value)}  # fmt: skip
        except (ValueError, IndexError):
            return "malformed OAuth header"
        if params.get("realm") != self.config.account:
            return "realm is not the account id"
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            return "signature method is not HMAC-SHA256"
        if params.get("oauth_version", "1.0") != "1.0":
            return "oauth_version is not 1.0"
        key = (params.get("oauth_consumer_key", ""), params.get("oauth_token", ""))
        secrets_ = self.config.tba.get(key)
        if secrets_ is None:
            return "unknown consumer key or token"
        nonce, stamp = params.get("oauth_nonce", ""), params.get("oauth_timestamp", "")
        if not NONCE.fullmatch(nonce):
            return "nonce is not 6 to 64 letters and digits"
        if not stamp.isdigit() or abs(int(stamp) - now) > self.config.timestamp_skew_s:
            return "stale or malformed timestamp"
        if "oauth_body_hash" in params:
            digest = base64.b64encode(hashlib.sha1(body).digest()).decode()
            if not hmac.compare_digest(digest, params["oauth_body_hash"]):
                return "oauth_body_hash does not match the body"
        form = "application/x-www-form-urlencoded" in (headers.get("Content-Type") or "")
        query = url.split("?", 1)[1] if "?" in url else ""
        collected = oauth_signature.collect_parameters(
            uri_query=query, body=body.decode("utf-8", "replace") if form else None,
            headers={"Authorization": value})  # fmt: skip
        request = SimpleNamespace(params=collected, uri=url.split("?", 1)[0],
                                  http_method=method, signature=params.get("oauth_signature", ""))  # fmt: skip
        if not oauth_signature.verify_hmac_sha256(request, *secrets_):
            return "bad signature"
        seen = (*key, nonce)
        with self._lock:
            window = self._nonce_times
            while window and now - window[0][0] > 2 * self.config.timestamp_skew_s:
                self._nonces.discard(window.popleft()[1])  # too old to pass the timestamp check
            if seen in self._nonces:
                return "nonce already used"
            self._nonces.add(seen)
            window.append((now, seen))
        return None


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})
