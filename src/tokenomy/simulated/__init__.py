"""A simulated token factory, built in: providers of ``kind = "simulated"``.

A simulated provider answers in the real OpenAI (chat completions, completions,
embeddings, Responses) and Anthropic (messages, count_tokens) wire formats, streamed or
not, usage included, at a configured speed and failure rate, with no API key. The
gateway serves it on a loopback port of its own (:class:`SimulatedFactory`) and calls it
over HTTP like any upstream: the request path is the one a real provider takes. An
OpenAI client is answered in OpenAI's format and an Anthropic client in Anthropic's
(``tokenomy.wire.bridge`` picks the same-format passthrough for a simulated upstream).
What it answers, and how its usage is counted: :mod:`tokenomy.simulated.answers`; its
prompt cache: :mod:`tokenomy.simulated.cache`; its server: :mod:`tokenomy.simulated.server`.

Config (``[providers.NAME]``, all optional but ``kind``)::

    kind = "simulated"
    tokens_per_s = 100     # output speed; 0 = as fast as possible (load generation)
    ttft_ms = 300          # time to first token
    failure_rate = 0.0     # share of calls answered 429 / 500 / 503 (Anthropic: 529)
    answer_tokens = 120    # output tokens of an answer (fewer when the request caps them)
"""

from __future__ import annotations

import dataclasses

from tokenomy.config import Model, Settings
from tokenomy.simulated.server import Options, SimulatedFactory

KIND = "simulated"


def options(settings: Settings, provider: str) -> Options:
    """A simulated provider's options: its config, defaults for what it leaves out."""
    raw = settings.raw.providers[provider]
    default = Options()
    return Options(
        tokens_per_s=default.tokens_per_s if raw.tokens_per_s is None else raw.tokens_per_s,
        ttft_ms=default.ttft_ms if raw.ttft_ms is None else raw.ttft_ms,
        failure_rate=default.failure_rate if raw.failure_rate is None else raw.failure_rate,
        answer_tokens=default.answer_tokens if raw.answer_tokens is None else raw.answer_tokens,
    )


def attach(settings: Settings) -> tuple[Settings, SimulatedFactory | None]:
    """The settings with each simulated provider pointed at a new factory, and the factory.

    ``(settings, None)`` when no provider is simulated. The factory's port is bound here;
    serve it with ``app.cleanup_ctx.append(factory.serve)``.
    """
    names = [n for n, p in settings.providers.items() if p.kind == KIND]
    if not names:
        return settings, None
    factory = SimulatedFactory({n: options(settings, n) for n in names})
    providers = {
        n: dataclasses.replace(p, base_url=factory.base_url(n)) if n in names else p
        for n, p in settings.providers.items()
    }

    def rebind(model: Model) -> Model:
        deps = tuple(
            dataclasses.replace(d, provider=providers[d.provider.name]) for d in model.deployments
        )
        return dataclasses.replace(model, deployments=deps)

    rebound = dataclasses.replace(
        settings,
        providers=providers,
        models={name: rebind(m) for name, m in settings.models.items()},
        patterns=tuple(rebind(m) for m in settings.patterns),
    )
    return rebound, factory


__all__ = ["KIND", "Options", "SimulatedFactory", "attach", "options"]
