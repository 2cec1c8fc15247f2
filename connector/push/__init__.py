"""Push back: scorecards written into the CRMs, only what changed (design.md, "Push back").

* :mod:`connector.push.settings` — the ``[push]`` config section.
* :mod:`connector.push.fieldmap` — the per-CRM field maps (``mappings/<kind>.push.toml``).
* :mod:`connector.push.planner` — desired records vs. ``push_log``: the plan.
* :mod:`connector.push.writer` — the plan through the adapter's write API, answers into ``push_log``.
* :mod:`connector.push.run` — :func:`run_push`, what the CLI and the scheduled job call.
"""

from connector.push.run import PushError, PushReport, TargetReport, push_targets, run_push
from connector.push.settings import PushSettings

__all__ = ["PushError", "PushReport", "PushSettings", "TargetReport", "push_targets", "run_push"]
