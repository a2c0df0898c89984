"""JSON-LD for the broker: @context resolution and fast, exact term/value expansion and compaction.

* ``ContextResolver`` (``resolver``) turns a request's @context into a shared, immutable ``Context``
  (``context``), processing each distinct @context once with pyld; ``admin`` (``hosting``) backs the
  ``/jsonldContexts`` endpoints;
* ``Context`` answers term and value questions from memo tables (``values`` for Property values, in the
  internal value form of ``forms``);
* ``core`` knows the core context URLs; ``documents`` loads context documents (files, HTTP);
* ``usage`` keeps the stored contexts' usage counters.
"""

from .context import Context
from .core import CORE_CONTEXT_URL, is_core_context_url
from .resolver import ContextResolver
from .forms import from_expanded, to_expanded

__all__ = ["CORE_CONTEXT_URL", "Context", "ContextResolver", "from_expanded", "is_core_context_url",
           "to_expanded"]
