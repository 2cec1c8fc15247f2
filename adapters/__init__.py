"""Bundled CRM adapters; importing this package registers every kind (see connector.adapter).

One import per kind: each module calls ``connector.adapter.register`` when imported.
"""

from adapters import (
    jsonl,  # noqa: F401
    sharecrm,  # noqa: F401
    zoho,  # noqa: F401
)
