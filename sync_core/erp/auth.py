"""Authentication to NetSuite REST web services: OAuth 2.0, OAuth 1.0 TBA, static bearer.

Each scheme is a ``requests`` auth (``session.auth``), safe to share between the threads of
:meth:`sync_core.erp.rest.RestErpClient.post_many`:

- :class:`OAuth2ClientCredentials`: the machine-to-machine flow. A JWT assertion (header
  ``{"typ": "JWT", "alg": "PS256", "kid": <certificate id>}``, payload ``{"iss": <client
  id>, "scope": "rest_webservices", "aud": <token URL>, "iat", "exp"}``, ``exp`` at most
  3600 s after ``iat``) signed with the certificate's private key is exchanged at
  ``POST {base}/auth/oauth2/v1/token`` (``grant_type=client_credentials``,
  ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``) for an
  access token valid ``expires_in`` seconds (NetSuite: 3600). The token is kept and fetched
  anew ``refresh_margin_s`` (5 minutes) before it expires, by one thread while the others
  wait; there is no refresh token. A 401 drops the token that was refused, and the client
  retries once with a new one (:meth:`RestErpClient <sync_core.erp.rest.RestErpClient>`).
- :class:`TokenBasedAuth`: OAuth 1.0 with NetSuite's token-based authentication, signed
  HMAC-SHA256 by ``requests_oauthlib.OAuth1`` (``realm`` = the account id, e.g.
  ``1234567_SB1``; a fresh nonce and timestamp on every request, the query string signed).
- :class:`BearerToken`: a static ``Authorization: Bearer`` (a token obtained elsewhere).

Secrets (private key, access token, consumer key and secret, token id and secret) stay in
these objects: their ``repr`` shows none, errors carry NetSuite's code and detail but never
a credential, and the DEBUG records of ``oauthlib`` / ``requests_oauthlib`` (which print the
consumer key and token id) are raised to INFO while a TBA auth exists. No Dagster imports.
"""

from __future__ import annotations

import logging
import threading
import time

import jwt
import requests
from requests.auth import AuthBase
from requests_oauthlib import OAuth1

from sync_core.erp.netsuite_errors import Verdict, classify, no_answer, parse_error

TOKEN_PATH = "/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_S = 3600  # NetSuite: exp less than 60 minutes after iat
SCHEMES = ("oauth2", "tba", "bearer")


class AuthError(Exception):
    """The token endpoint refused or could not be reached; ``verdict`` says whether a retry
    can help (``transient``) and who owns the refusal."""

    def __init__(self, verdict: Verdict, status: int | None = None):
        super().__init__(f"NetSuite token request failed ({status or 'no answer'}): "
                         f"{verdict.message}")  # fmt: skip
        self.verdict = verdict
        self.status = status


def netsuite_host(account: str) -> str:
    """The account id as NetSuite's hosts spell it (``1234567_SB1`` -> ``1234567-sb1``)."""
    return account.strip().lower().replace("_", "-")


def netsuite_realm(account: str) -> str:
    """The account id as the OAuth 1.0 realm (``1234567-sb1`` -> ``1234567_SB1``)."""
    return account.strip().upper().replace("-", "_")


def netsuite_base_url(account: str) -> str:
    """``https://<account>.suitetalk.api.netsuite.com/services/rest``."""
    return f"https://{netsuite_host(account)}.suitetalk.api.netsuite.com/services/rest"


class BearerToken(AuthBase):
    """``Authorization: Bearer <token>`` on every request."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("the bearer token is empty")
        self._token = token

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def refused(self, request) -> bool:
        """After a 401: whether a retry with fresh credentials can help (not for a static
        token)."""
        return False

    def __repr__(self) -> str:
        return "BearerToken(***)"


class OAuth2ClientCredentials(AuthBase):
    """OAuth 2.0 client credentials with a PS256 JWT assertion (module docstring)."""

    def __init__(self, token_url: str, client_id: str, certificate_id: str, private_key: str,
                 *, scope: str = "rest_webservices", assertion_lifetime_s: int = 600,
                 refresh_margin_s: float = 300.0, timeout_s: float = 30.0,
                 algorithm: str = "PS256", clock=time.time):  # fmt: skip
        if not (client_id and certificate_id and private_key):
            raise ValueError("OAuth 2.0 needs a client id, a certificate id and a private key")
        if not 0 < assertion_lifetime_s <= MAX_ASSERTION_S:
            raise ValueError(f"assertion_lifetime_s must be within (0, {MAX_ASSERTION_S}]")
        self.token_url = token_url
        self.client_id = client_id
        self.certificate_id = certificate_id
        self._key = private_key
        self.scope = scope
        self.assertion_lifetime_s = assertion_lifetime_s
        self.refresh_margin_s = refresh_margin_s
        self.timeout_s = timeout_s
        self.algorithm = algorithm
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0  # tokens obtained (for tests and metrics)
        self._http = requests.Session()

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self.token_url!r}, key=***)"

    def assertion(self) -> str:
        """A freshly signed client assertion."""
        now = int(self._clock())
        payload = {"iss": self.client_id, "scope": self.scope, "aud": self.token_url,
                   "iat": now, "exp": now + self.assertion_lifetime_s}  # fmt: skip
        headers = {"typ": "JWT", "kid": self.certificate_id}
        try:
            return jwt.encode(payload, self._key, algorithm=self.algorithm, headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            # the key's text never goes into the message
            raise ValueError(f"the OAuth 2.0 private key cannot sign {self.algorithm} "
                             f"({type(exc).__name__})") from None  # fmt: skip

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion()}  # fmt: skip
        try:
            resp = self._http.post(self.token_url, data=form, timeout=self.timeout_s,
                                   headers={"Accept": "application/json"})  # fmt: skip
        except requests.Timeout:
            raise AuthError(no_answer("TIMEOUT", "token endpoint timed out")) from None
        except requests.RequestException as exc:
            raise AuthError(no_answer("CONNECTION_ERROR", type(exc).__name__)) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            status = resp.status_code if resp.status_code != 200 else 502
            v = classify(status, parse_error(status, body))
            if not v.transient:  # a refused assertion, client or grant: the login's
                v = Verdict("invalid_login", "integration", False, v.code, v.message)
            raise AuthError(v, resp.status_code)
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._token = str(body["access_token"])
        self._expires_at = self._clock() + lifetime
        self.fetches += 1

    def token(self) -> str:
        """The access token, fetched when there is none or it expires within the margin."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self.refresh_margin_s:
                self._token = None
                self._fetch()
            return self._token

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r

    def refused(self, request) -> bool:
        """After a 401 on ``request``: drop its token (unless another thread already replaced
        it) so the retry fetches a new one; True: retrying can help."""
        sent = (request.headers.get("Authorization") or "") if request is not None else ""
        with self._lock:
            if self._token is not None and sent == f"Bearer {self._token}":
                self._token = None
        return True


def _quiet_oauthlib() -> None:
    """oauthlib and requests_oauthlib log the consumer key and token id at DEBUG."""
    for name in ("oauthlib", "requests_oauthlib"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


class TokenBasedAuth(AuthBase):
    """OAuth 1.0 token-based authentication, HMAC-SHA256, realm = the account id."""

    def __init__(self, account: str, consumer_key: str, consumer_secret: str, token_id: str,
                 token_secret: str):  # fmt: skip
        if not all((account, consumer_key, consumer_secret, token_id, token_secret)):
            raise ValueError("TBA needs the account id, consumer key and secret, token id and "
                             "secret")  # fmt: skip
        _quiet_oauthlib()
        self.realm = netsuite_realm(account)
        self._oauth = OAuth1(consumer_key, client_secret=consumer_secret,
                             resource_owner_key=token_id, resource_owner_secret=token_secret,
                             signature_method="HMAC-SHA256", realm=self.realm)  # fmt: skip

    def __call__(self, r):
        return self._oauth(r)

    def refused(self, request) -> bool:
        """A refused signature is not fixed by signing again."""
        return False

    def __repr__(self) -> str:
        return f"TokenBasedAuth(realm={self.realm!r}, ***)"
