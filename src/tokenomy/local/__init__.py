"""The local lane: an open GGUF model served on this machine, and counted exactly.

* :mod:`~tokenomy.local.server` — ``tokenomy local serve``: llama.cpp's own HTTP server
  (``xllamacpp``, the ``tokenomy[local]`` extra) in the OpenAI wire format;
* :mod:`~tokenomy.local.model` — a model from a ``.gguf`` path or an installed model package;
* :mod:`~tokenomy.local.template` — the explicit chat template (the packaged model is a base
  model), rendered identically by the server and by the gateway;
* :mod:`~tokenomy.local.gguf` and :mod:`~tokenomy.local.tokenizer` — the model's own
  vocabulary read from the GGUF header, tokenized as llama.cpp does;
* :mod:`~tokenomy.local.metering` — the gateway's offline counts for a provider with
  ``tokenizer = ...`` when its server reports no usage.

Importing this package never loads llama.cpp: only :class:`~tokenomy.local.server.LocalServer`
does, so the gateway and the tokenizer work without the extra.
"""

from __future__ import annotations

from tokenomy.local.metering import LocalCounter, counter_for, offline_counts
from tokenomy.local.model import DEFAULT_MODEL, resolve_model
from tokenomy.local.template import CHAT_TEMPLATE, render_chat

__all__ = [
    "CHAT_TEMPLATE",
    "DEFAULT_MODEL",
    "LocalCounter",
    "counter_for",
    "offline_counts",
    "render_chat",
    "resolve_model",
]
