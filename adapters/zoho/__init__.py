"""Zoho CRM (v8 REST API): refresh-token OAuth per data centre, incremental pulls, batched writes.

Importing the package registers the ``zoho`` kind; ``mappings/zoho.toml`` is its bundled mapping.
"""

from __future__ import annotations

from adapters.zoho.adapter import ZohoAdapter
from adapters.zoho.options import ZohoOptions
from connector.adapter import AdapterKind, register

register("zoho", AdapterKind(factory=ZohoAdapter, options=ZohoOptions, bundled_mapping="zoho.toml"))

__all__ = ["ZohoAdapter", "ZohoOptions"]
