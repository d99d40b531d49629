"""Each deployable's grants, one file each (cloud-foundation-fabric keeps a module's IAM in its
iam.tf): predict.py, move.py, sweep.py, review_app.py, and common.py for what more than one needs
(a claim's advance, a model's read). The components (infra/functions.py, infra/sweep.py,
infra/review.py) declare them by calling these; the platform's own grants (the builds, the
records) stay with the component that makes what they are on. Every grant, generated: docs/iam.md.
"""
