"""The Foundation (infra/foundation.py) and the three components built from it alone: what every
later component (the functions, the push, the sweep, the review app, monitoring) is built from."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from infra.foundation import Foundation

if TYPE_CHECKING:  # only names their types: build and project are built from the Foundation
    from infra.build import FunctionBuild
    from infra.project import AppEngine
    from infra.records import Records


@dataclass(frozen=True)
class Context(Foundation):
    build: FunctionBuild
    app_engine: AppEngine
    records: Records

    @classmethod
    def of(
        cls, foundation: Foundation, build: FunctionBuild, app_engine: AppEngine, records: Records
    ) -> Context:
        shared = {f.name: getattr(foundation, f.name) for f in fields(Foundation)}
        return cls(**shared, build=build, app_engine=app_engine, records=records)
