"""App Engine's `default` service for this project: it serves nothing.

App Engine wants a `default` service before any other, and never lets it be deleted; each stack's
review app is its own service (https://<prefix>-review-dot-<application host>). Every path answers
404 with a line saying where to look, and no request reaches anything else.
"""

MESSAGE = (
    b"Nothing is served here. Each quality-inspection stack has its own review app: "
    b"`pulumi stack output review_app_url` prints its address.\n"
)


def app(environ, start_response):
    start_response(
        "404 Not Found", [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]
    )
    return [MESSAGE]
