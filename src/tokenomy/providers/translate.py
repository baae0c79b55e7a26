"""Translation between the OpenAI Chat Completions and Anthropic Messages wire formats.

Agents call the gateway with the official ``openai`` or ``anthropic`` SDK; the upstream
deployment may speak the other format. These pure functions translate the already-parsed
JSON dicts (no I/O, no models of whole bodies) and raise
:class:`~tokenomy.errors.InvalidRequest` (with ``param``) for a request that cannot be
served faithfully, or :class:`~tokenomy.errors.UpstreamError` for an error inside an
upstream stream.

OpenAI client, Anthropic upstream (:mod:`.translate_openai_to_anthropic`, streams in
:mod:`.translate_streams`):

* :func:`chat_request_to_messages` - system/developer messages (any position) →
  ``system``; user/assistant/tool → alternating turns, consecutive same-role turns merged,
  tool messages → ``tool_result`` blocks; text, ``image_url`` (data URL → base64 source,
  http(s) → url source) and inline PDF ``file`` parts; ``max_completion_tokens`` or
  ``max_tokens`` or the deployment default; ``stop`` → ``stop_sequences``;
  ``temperature`` clamped to 0-1; ``top_p`` (dropped when temperature is set: current
  Claude models reject both); function tools, ``tool_choice``
  (auto/none/required/function/allowed_tools), ``parallel_tool_calls=false`` →
  ``disable_parallel_tool_use``; ``tool_calls`` → ``tool_use`` with parsed input;
  ``user`` (or ``safety_identifier``) → ``metadata.user_id``; ``stream``;
  ``response_format`` json_schema → ``output_config.format``; ``cache_control`` or
  ``prompt_cache_breakpoint`` on parts → ``cache_control``.
  Raises for ``n`` > 1, ``logprobs``/``top_logprobs``, audio, ``functions``/
  ``function_call``, custom tools, ``web_search_options``, ``moderation``, OpenAI file ids.
  Dropped (tuning hints without an Anthropic counterpart): ``frequency_penalty``,
  ``presence_penalty``, ``seed``, ``logit_bias``, ``reasoning_effort``, ``verbosity``,
  ``service_tier``, ``store``, ``metadata``, ``prediction``, ``prompt_cache_key``,
  ``prompt_cache_retention``, ``prompt_cache_options``, ``stream_options`` (the gateway
  reads ``include_usage``), ``response_format`` json_object (OpenAI already requires the
  prompt to ask for JSON), tool ``strict``, image ``detail``, message ``name``.
* :func:`messages_response_to_chat` - text → ``content``; ``tool_use`` → ``tool_calls``;
  thinking → ``reasoning_content``; stop_reason → finish_reason (end_turn, stop_sequence,
  pause_turn → stop; max_tokens, model_context_window_exceeded → length; tool_use →
  tool_calls; refusal → content_filter); usage with ``prompt_tokens = input +
  cache_read + cache_creation`` and ``prompt_tokens_details.cached_tokens = cache_read``.
* :class:`MessagesToChatStream` - SSE events → ``chat.completion.chunk`` dicts.

Anthropic client, OpenAI upstream (:mod:`.translate_anthropic_to_openai`, streams in
:mod:`.translate_streams`):

* :func:`messages_request_to_chat` - ``system`` → system message; text, image
  (base64/url), inline PDF/plain-text documents, ``tool_use`` → ``tool_calls``,
  ``tool_result`` → tool messages (``is_error`` → "Error: " prefix, images moved to the
  following user message); ``max_tokens``, ``stop_sequences`` → ``stop``,
  ``temperature``, ``top_p``; custom tools → function tools; ``tool_choice``;
  ``disable_parallel_tool_use`` → ``parallel_tool_calls=false``; ``metadata.user_id`` →
  ``user``; ``stream`` → ``stream`` + ``stream_options.include_usage``;
  ``output_config.format`` → ``response_format`` json_schema.
  Raises for server tools (web search, bash, ...), Files-API sources, URL PDFs.
  Dropped: ``top_k``, ``thinking``, ``output_config.effort``, ``cache_control``,
  ``service_tier``, ``container``, ``inference_geo``, ``speed``; thinking and server-tool
  blocks of earlier assistant turns.
* :func:`chat_response_to_messages` - content/refusal → text blocks; ``tool_calls`` →
  ``tool_use`` (arguments that are not a JSON object → ``{"_raw": arguments}``);
  finish_reason → stop_reason; usage with ``input_tokens = prompt_tokens -
  cached_tokens - cache_write_tokens``; id ``msg_<upstream id>``.
* :class:`ChatToMessagesStream` - chunks → ``(event, data)`` pairs, ended by ``finish()``.
"""

from __future__ import annotations

from tokenomy.providers.translate_anthropic_to_openai import (
    chat_response_to_messages,
    messages_request_to_chat,
)
from tokenomy.providers.translate_openai_to_anthropic import (
    chat_request_to_messages,
    messages_response_to_chat,
)
from tokenomy.providers.translate_streams import ChatToMessagesStream, MessagesToChatStream

__all__ = [
    "ChatToMessagesStream",
    "MessagesToChatStream",
    "chat_request_to_messages",
    "chat_response_to_messages",
    "messages_request_to_chat",
    "messages_response_to_chat",
]
