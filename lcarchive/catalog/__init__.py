"""The catalog: its pydantic models, the content shipped as data in ``catalog/``, the entries
derived from observation groups, and the target index."""

from lcarchive.catalog.models import Catalog

__all__ = ["Catalog"]
