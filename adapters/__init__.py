"""Bundled CRM adapters; importing this package registers every kind (see connector.adapter).

One name per kind: each module calls ``connector.adapter.register`` when imported.
"""

from adapters import (
    jsonl,
    zoho,
)

__all__ = ["jsonl", "zoho"]
