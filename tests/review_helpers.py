"""Helpers for review-app tests: IAP tokens signed by a key the test makes, and a reviewer page object."""

from __future__ import annotations

import itertools
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

from scripts.local.standin import StandIn

AUDIENCE = "/projects/123456/apps/demo-project"


class FakeIap:
    """Signs IAP-shaped JWTs and serves the public keys at `certs_url`, as gstatic does."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = self.signer_with_kid("test-kid")
        self.fetches = 0  # how often the app fetched the public keys
        public = (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        keys = {"test-kid": public}

        def certs(body):
            self.fetches += 1
            return 200, keys

        self.stand_in = StandIn({("GET", "/public_key"): certs})
        self.certs_url = f"{self.stand_in.url}/public_key"

    def stop(self) -> None:
        self.stand_in.stop()

    def signer_with_kid(self, kid: str):
        """A signer with this fake's key, under another key id (a forged or rotated `kid`)."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return crypt.ES256Signer.from_string(pem, key_id=kid)

    def token(
        self,
        email: str,
        *,
        audience: str = AUDIENCE,
        issuer: str = "https://cloud.google.com/iap",
        expires_in: int = 600,
        signer=None,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": issuer,
            "aud": audience,
            "email": email,
            "sub": "accounts.google.com:1",
            "iat": now - 5,
            "exp": now + expires_in,
        }
        return jwt.encode(signer or self.signer, payload).decode()


class Reviewer:
    """A page object for one reviewer's tab on the Flask test client (like flaskr's AuthActions):
    each one is a page load of its own, with its own tab id, as the page makes one."""

    _tabs = itertools.count()

    def __init__(self, client, token: str | None = None, page: str = "/"):
        self.client = client
        self.tab = f"tab-{next(self._tabs)}"
        self.headers = {"x-goog-iap-jwt-assertion": token} if token else {}
        response = client.get(page, headers=self.headers)
        assert response.status_code == 200, response.status_code
        self.csrf = client.get_cookie("qi_csrf").value

    def get(self, path: str, **kwargs):
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, body: dict, csrf: str | None = None):
        headers = {**self.headers, "X-CSRF-Token": self.csrf if csrf is None else csrf}
        return self.client.post(path, json={"tab": self.tab, **body}, headers=headers)

    def next(self, exclude: tuple[str, ...] = (), kind: str = "view") -> dict:
        return self.post("/api/next", {"exclude": list(exclude), "kind": kind}).get_json()

    def decide(self, item: dict, label: str):
        return self.post(
            "/api/decide", {"name": item["name"], "generation": item["generation"], "label": label}
        )

    def skip(self, item: dict):
        return self.post("/api/skip", {"name": item["name"]})

    def undo(self, decision: str | dict):
        """Undo a decision (the answer to decide, or just its name)."""
        if isinstance(decision, dict):
            return self.post(
                "/api/undo", {"decision": decision["name"], "generation": decision["generation"]}
            )
        return self.post("/api/undo", {"decision": decision})
