"""Throw-away credentials for tests and demos: the sandbox's configuration and the client's
values, generated in memory (never written to disk or logged; the reprs hide the secrets).

``auth, client = test_credentials()`` gives a :class:`~sandboxes.erp_server.auth.SandboxAuth`
for ``ErpSandbox(..., auth=auth)`` and a :class:`ClientCredentials` holding the RSA private
key of the OAuth 2.0 client and the TBA consumer / token secrets, with
:meth:`ClientCredentials.jwt_assertion` (the client-credentials JWT) and
:meth:`ClientCredentials.oauth1` (a ``requests`` auth signing HMAC-SHA256 with the realm).
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandboxes.erp_server.auth import SandboxAuth


@functools.lru_cache(maxsize=1)
def _rsa_key() -> rsa.RSAPrivateKey:
    # one 2048-bit key per process: generating one takes a noticeable fraction of a second
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclasses.dataclass(frozen=True)
class ClientCredentials:
    """What a client of the sandbox holds (secrets hidden from the repr)."""

    account: str
    client_id: str
    certificate_id: str
    consumer_key: str
    token_id: str
    private_key_pem: str = dataclasses.field(repr=False)
    consumer_secret: str = dataclasses.field(repr=False)
    token_secret: str = dataclasses.field(repr=False)

    def jwt_assertion(self, token_url: str, *, now: float | None = None, lifetime_s: int = 3600,
                      algorithm: str = "PS256", scope=("rest_webservices",)) -> str:  # fmt: skip
        """The client-credentials JWT for ``token_url`` (NetSuite's request token structure)."""
        iat = int(time.time() if now is None else now)
        payload = {"iss": self.client_id, "scope": list(scope), "aud": token_url, "iat": iat,
                   "exp": iat + lifetime_s}  # fmt: skip
        return jwt.encode(payload, self.private_key_pem, algorithm=algorithm,
                          headers={"typ": "JWT", "kid": self.certificate_id})  # fmt: skip

    def oauth1(self):
        """A ``requests`` auth signing TBA requests (HMAC-SHA256, realm = the account id)."""
        from requests_oauthlib import OAuth1

        return OAuth1(self.consumer_key, self.consumer_secret, self.token_id, self.token_secret,
                      signature_method="HMAC-SHA256", realm=self.account)  # fmt: skip


def test_credentials(
    account: str = "TSTDRV123", **auth_options
) -> tuple[SandboxAuth, ClientCredentials]:
    """A sandbox auth config accepting one fresh OAuth 2.0 client and one TBA token, and the
    client side of both; ``auth_options`` go to :class:`SandboxAuth` (``token_ttl_s``, ...)."""
    key = _rsa_key()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()  # fmt: skip
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip
    client = ClientCredentials(
        account=account,
        client_id=secrets.token_hex(32),
        certificate_id=uuid.uuid4().hex[:20],
        consumer_key=secrets.token_hex(32),
        token_id=secrets.token_hex(32),
        private_key_pem=private_pem,
        consumer_secret=secrets.token_hex(32),
        token_secret=secrets.token_hex(32),
    )
    auth = SandboxAuth(
        account=account,
        oauth2_clients={client.client_id: (client.certificate_id, public_pem)},
        tba={(client.consumer_key, client.token_id): (client.consumer_secret, client.token_secret)},
        **auth_options,
    )
    return auth, client


test_credentials.__test__ = False  # not a pytest test, despite its name
