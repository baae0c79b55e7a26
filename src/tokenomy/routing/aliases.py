"""From a requested model id to a configured model: exact names, aliases, patterns.

Order: an exact model name; else the first ``[[aliases]]`` whose glob matches (its target
serves, with the target's deployments and upstream ids); else the first model whose name
is a glob (``claude-*``, ``deepseek/*``) — its deployments receive the requested id (or,
when a deployment's ``model`` contains ``*``, the part the name's first ``*`` matched).
Resolutions of ids that are not exact names are memoised (bounded).
"""

from __future__ import annotations

import fnmatch
import re

from tokenomy.config import Model, Settings

_MAX_MEMO = 4096


def _capture(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    for c in pattern:
        out.append("(.*)" if c == "*" else "." if c == "?" else re.escape(c))
    return re.compile("".join(out), re.DOTALL)


class Resolver:
    __slots__ = ("_aliases", "_memo", "_models", "_patterns")

    def __init__(self, settings: Settings) -> None:
        self._models = settings.models
        self._aliases = [(a.pattern, settings.models[a.model]) for a in settings.aliases]
        self._patterns = [(m.name, m) for m in settings.patterns]
        self._memo: dict[str, tuple[Model, str] | None] = {}

    def resolve(self, requested: str) -> tuple[Model, str] | None:
        """(model, matched part for ``*`` templates) for a requested id, or None."""
        model = self._models.get(requested)
        if model is not None and not model.pattern:
            return model, requested
        memo = self._memo
        if requested in memo:
            return memo[requested]
        found: tuple[Model, str] | None = None
        for pattern, target in self._aliases:
            if fnmatch.fnmatchcase(requested, pattern):
                found = (target, requested)
                break
        if found is None:
            for pattern, target in self._patterns:
                if fnmatch.fnmatchcase(requested, pattern):
                    m = _capture(pattern).fullmatch(requested)
                    groups = m.groups() if m else ()
                    found = (target, groups[0] if groups else requested)
                    break
        if len(memo) >= _MAX_MEMO:
            memo.clear()
        memo[requested] = found
        return found


def upstream_id(template: str, requested: str, matched: str) -> str:
    """The id a pattern model's deployment sends upstream."""
    if not template:
        return requested
    return template.replace("*", matched) if "*" in template else template
