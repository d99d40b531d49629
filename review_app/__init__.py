"""The review app: reviewers decide the unclear images here; auditors read who decided what. One
codebase, deployed once per role (ROLE=review, ROLE=audit), each behind its own IAP access.

Shaped like Flask's tutorial: `create_app` reads its settings (environment first, then a test
mapping of the same variables), validates them, and registers the blueprints. Production runs
`main:app` under gunicorn on App Engine standard, behind IAP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """The app (review_app/app.py). Imported here only when called: `import review_app` needs no Flask."""
    from review_app.app import create_app as create

    return create(test_config)
