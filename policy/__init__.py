"""Policy for the resources the Pulumi program declares: pure rules (rules.py) used by the offline
tests over the mocked graph, and by the CrossGuard pack (__main__.py) against a real preview."""
