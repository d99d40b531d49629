"""Short-lived V4 signed URLs for images, made without any key file.

- In the cloud: the app's own service account signs through the IAM `signBlob` API
  (it holds a custom role with only iam.serviceAccounts.signBlob on itself).
- Against fake-gcs-server (STORAGE_EMULATOR_HOST set): a throwaway RSA key made in memory at
  start, never written anywhere; the emulator does not check signatures, but the URLs have the
  real V4 shape and go through the same code path.
"""

from __future__ import annotations

import functools
import os
import threading
from datetime import timedelta

from inspection import calls, storage

# The local signing accounts: <deployable>@… (the emulator's proxy reads the deployable back).
LOCAL_SIGNER_DOMAIN = "@local-signer.iam.gserviceaccount.com"


class IamSigner:
    origin = "https://storage.googleapis.com"  # where the signed URLs point (the page's CSP allows it)

    def __init__(self, seconds: int):
        self.expiration = timedelta(seconds=seconds)
        self._lock = threading.Lock()
        self._credentials = None

    def _token(self):
        import google.auth
        from google.auth.transport.requests import Request

        with self._lock:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"]
                )
            if not self._credentials.valid:
                # refresh() first, or service_account_email is the literal "default"
                # (docs/gcp-rules.md, "Signed URLs")
                self._credentials.refresh(Request())
            return self._credentials.service_account_email, self._credentials.token

    def url(self, bucket: str, name: str, generation: int | None) -> str:
        email, token = self._token()
        calls.record("iamcredentials.serviceAccounts.signBlob", f"projects/-/serviceAccounts/{email}")
        blob = storage.client().bucket(bucket).blob(name, generation=generation)
        return blob.generate_signed_url(
            version="v4",
            expiration=self.expiration,
            method="GET",
            service_account_email=email,
            access_token=token,
        )


class LocalSigner:
    def __init__(self, seconds: int, endpoint: str):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from google.oauth2 import service_account

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        # As in the cloud, each service signs as its own account (review, audit), and the URL names
        # it: the storage emulator's proxy reads who a signed read acts for from X-Goog-Credential.
        self._credentials = functools.cache(
            lambda deployable: service_account.Credentials.from_service_account_info(
                {
                    "type": "service_account",
                    "client_email": f"{deployable}{LOCAL_SIGNER_DOMAIN}",
                    "private_key": pem,
                    "private_key_id": "local",
                    "token_uri": "https://oauth2.googleapis.com/token",
                    "project_id": "local",
                }
            )
        )
        self.expiration = timedelta(seconds=seconds)
        self.endpoint = self.origin = endpoint

    def url(self, bucket: str, name: str, generation: int | None) -> str:
        # The call the cloud makes here instead (IamSigner), for the permission trace.
        calls.record("iamcredentials.serviceAccounts.signBlob", calls.OWN_ACCOUNT)
        blob = storage.client().bucket(bucket).blob(name)
        return blob.generate_signed_url(
            version="v4",
            expiration=self.expiration,
            method="GET",
            credentials=self._credentials(calls.current()),
            api_access_endpoint=self.endpoint,
        )


def create(settings):
    """Local signing against the emulator, IAM signing everywhere else."""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        return LocalSigner(settings.signed_url_seconds, emulator.rstrip("/"))
    return IamSigner(settings.signed_url_seconds)
