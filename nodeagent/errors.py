"""The daemon's exception tree.

::

    NodeagentError
    └── ConfigError        a setting is wrong; names the setting

Library packages keep their own trees (``nodeagent.store.errors``,
``nodeagent.objects.codec``); API failures are ``nodeagent.api.status.ApiError``.
"""

from __future__ import annotations


class NodeagentError(Exception):
    pass


class ConfigError(NodeagentError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
