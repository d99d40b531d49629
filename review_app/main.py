"""gunicorn entry point: `gunicorn -b :$PORT main:app` (the Pulumi program packages this at the root)."""

from review_app import create_app

app = create_app()
