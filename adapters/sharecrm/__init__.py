"""ShareCRM (纷享销客 / fxiaoke) open API: corp token, ``_id``-cursor pulls past the offset cap,
errorCode handling, a per-endpoint limiter, write-back.

Importing the package registers the ``sharecrm`` kind; ``mappings/sharecrm.toml`` is its bundled mapping.
"""

from __future__ import annotations

from adapters.sharecrm.adapter import ShareCrmAdapter
from adapters.sharecrm.options import ShareCrmOptions
from connector.adapter import AdapterKind, register

register(
    "sharecrm", AdapterKind(factory=ShareCrmAdapter, options=ShareCrmOptions, bundled_mapping="sharecrm.toml")
)

__all__ = ["ShareCrmAdapter", "ShareCrmOptions"]
