"""Staff-facing text in Chinese and English.

Each module keeps its own catalog next to the code that prints it (a dict of key → {"en", "zh"}), and
formats through :func:`tr`, so adding a message never means editing a shared file. Terms follow the
glossary in design.md (工单, 回访, 绩效考核表, 隔离区 …).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Lang = Literal["zh", "en"]
Catalog = Mapping[str, Mapping[str, str]]
LANGS: tuple[Lang, ...] = ("zh", "en")


def tr(catalog: Catalog, key: str, lang: str, /, **values: object) -> str:
    """The message ``key`` in ``lang`` (English if the language is missing), formatted with ``values``."""
    texts = catalog[key]
    template = texts.get(lang) or texts["en"]
    return template.format(**values)
