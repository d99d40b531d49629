"""Entry point for `pulumi up` (Pulumi.yaml: main: infra/). It only composes and exports."""

import sys
from pathlib import Path

# Pulumi runs this file from infra/; the program imports `infra.*` and `inspection` from the root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import config, program

program.export(program.build(config.load()))
