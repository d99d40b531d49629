"""Shared domain of quality-inspection: message schema, bucket layout, routing rule and adapters.

Written once and packaged into every deployable by the Pulumi program (infra/packaging.py).
Keep module imports light: the functions pay for them on every cold start.
"""
