"""Tools that examine the Pulumi program without a cloud, kept out of the program's own package:

- mocks.py: the program run under Pulumi's mocks, with what the engine would refuse (duplicate
  URNs) and the graph it would be told (dependencies, retained and adopted resources);
- permission_map.py and iam_roles.json: which permissions each API call needs, and what each
  predefined role grants (the permission trace's registers: scripts/iam_trace.py);
- gcp_rules.py: every Google Cloud rule the program relies on, with its source and the tests that
  check it (`make docs` writes docs/gcp-rules.md from it).
"""
