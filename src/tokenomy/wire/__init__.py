"""The wire-format seam: every place the gateway depends on a wire format.

Each endpoint of each wire format is one :class:`~tokenomy.wire.base.Endpoint`; each
(client endpoint, upstream wire format) pair is one :class:`~tokenomy.wire.base.Bridge`.
The gateway picks both once per request, by dict lookup, and never compares format names.
See docs/wire-formats.md for how to add a wire format.
"""

from __future__ import annotations

from tokenomy.wire import anthropic, chat_messages, count_tokens, openai, responses_messages
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP, Bridge, Endpoint, Relay, Wire

# The registration: one module per wire format or bridge, each listing its ENDPOINTS
# and/or BRIDGES.
_MODULES = (openai, anthropic, chat_messages, responses_messages, count_tokens)

ENDPOINTS: dict[str, Endpoint] = {e.name: e for m in _MODULES for e in getattr(m, "ENDPOINTS", ())}
WIRES: dict[str, Wire] = {e.wire.name: e.wire for e in ENDPOINTS.values()}
BRIDGES: dict[tuple[str, str], Bridge] = {
    (b.client.name, b.upstream.wire.name): b for m in _MODULES for b in getattr(m, "BRIDGES", ())
}
# Per client endpoint, its bridges by upstream wire name: looked up once per request
# without building a key.
_BY_CLIENT: dict[str, dict[str, Bridge]] = {}
for (_client, _upstream), _bridge in BRIDGES.items():
    _BY_CLIENT.setdefault(_client, {})[_upstream] = _bridge
OPENAI = openai.OPENAI
ANTHROPIC = anthropic.ANTHROPIC


def bridge(endpoint: Endpoint, upstream: str) -> Bridge | None:
    """The bridge serving ``endpoint`` from an upstream of wire format ``upstream``."""
    if upstream == "simulated":
        # The built-in simulated factory (tokenomy.simulated) speaks every client's format.
        upstream = endpoint.wire.name
    return _BY_CLIENT[endpoint.name].get(upstream)


def served_paths(wire: Wire) -> list[str]:
    """The gateway paths an upstream of ``wire`` can serve (for error messages)."""
    return [b.client.path for b in BRIDGES.values() if b.upstream.wire is wire]


__all__ = [
    "ANTHROPIC",
    "BRIDGES",
    "DEFAULT_OUTPUT_CAP",
    "ENDPOINTS",
    "OPENAI",
    "WIRES",
    "Bridge",
    "Endpoint",
    "Relay",
    "Wire",
    "bridge",
    "served_paths",
]
