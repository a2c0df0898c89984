"""What an index a compiled filter can use looks like (``broker.store.indexes`` builds them on demand).

The ``expression`` and ``where`` texts are SQL over a row of ``{schema}.entities`` written by the compilers
(never user input; attribute IRIs appear only after a strict character-class check) and must be repeated
verbatim in the compiled filter, or PostgreSQL will not match the index.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexSpec:
    key: str  # stable identity, e.g. "value:<IRI>"; the index name is derived from it
    method: str  # "btree" | "gist" | "gin"
    expression: str
    where: str | None = None
