"""Builds the live objects for a configured source: its mappings and its adapter.

Kept apart from the CLI so the scheduler, the demo and tests build sources exactly the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from connector.adapter import Adapter, AdapterContext, adapter_kinds, create_adapter
from connector.clock import Clock
from connector.config import Config, SourceConfig
from connector.mapping import EntityMapping, load_mapping
from connector.store import SqlTokenCache, Store


@dataclass(frozen=True)
class LiveSource:
    name: str
    config: SourceConfig
    adapter: Adapter
    mappings: dict[str, EntityMapping]


def source_mappings(config: Config, source: SourceConfig) -> dict[str, EntityMapping]:
    """The source's entity mappings: its own file if configured, else the kind's bundled one."""
    kind = adapter_kinds()[source.kind]
    location = source.mapping or kind.bundled_mapping
    if location is None:
        raise ValueError(
            f"source {source.name!r}: kind {source.kind!r} has no bundled mapping; set `mapping`"
        )
    entities = load_mapping(location, config.clinic.tz).entities
    wanted = source.entities or list(entities)
    return {name: entities[name] for name in wanted if name in entities}


def build_source(
    config: Config,
    name: str,
    store: Store,
    *,
    clock: Clock,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveSource:
    source = config.sources[name]
    mappings = source_mappings(config, source)
    context = AdapterContext(
        name=name,
        config=source,
        base_dir=config.path.parent,
        mappings=mappings,
        tokens=SqlTokenCache(store),
        clock=clock,
        sleep=sleep,
    )
    return LiveSource(
        name=name, config=source, adapter=create_adapter(source.kind, context), mappings=mappings
    )
