"""The tokenomy error tree. Each error knows its HTTP status and machine-readable code.

TokenomyError
├── ConfigError                 (start-up: file, key, problem)
├── LedgerError                 (storage problems)
├── LocalModelError             (tokenomy local: model, tokenizer or engine missing)
└── RequestError                (answered to a client, in its own wire format)
    ├── AuthenticationError     401 invalid_api_key
    ├── PermissionDenied        403 permission_denied
    ├── DataPolicyRefused       403 data_policy (no allowed deployment for the data class)
    ├── InvalidRequest          400 invalid_request_error
    ├── ModelNotFound           404 model_not_found
    ├── NotFound                404 not_found
    ├── MethodNotAllowed        405 method_not_allowed (with Allow)
    ├── Conflict                409 conflict (refused by the current state)
    ├── PayloadTooLarge         413 request_too_large
    ├── RequestTimeout          408 request_timeout (the body stalled)
    ├── UnsupportedEncoding     415 unsupported_content_encoding
    ├── ClientDisconnected      499 client_disconnected (the client left mid-upload)
    ├── BudgetExceeded          429 budget_exceeded
    ├── RateLimited             429 rate_limited
    ├── TaskCapExceeded         429 task_cap_exceeded (a per-task cap; not retried)
    └── UpstreamError           upstream status (or 502) upstream_error
        ├── UpstreamUnavailable 502 upstream_unavailable
        └── UpstreamTimeout     504 upstream_timeout
    InternalError               500 internal_error (a bug; still recorded)
    ServiceUnavailable          503 service_unavailable (database unreachable; Retry-After)
    ├── BudgetUnavailable       503 budget_unavailable
    ├── AuthUnavailable         503 auth_unavailable
    └── LedgerUnavailable       503 ledger_unavailable (journal not writable, e.g. disk full)
"""

from __future__ import annotations

from typing import Any, ClassVar

from tokenomy.redact import scrub


class TokenomyError(Exception):
    """Base of every error raised by tokenomy."""


class ConfigError(TokenomyError):
    """A configuration file is invalid; the message names the file, the key and the problem."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


class LedgerError(TokenomyError):
    """The usage ledger could not be opened, migrated or written.

    The message is scrubbed of passwords: drivers' errors may quote the database URL.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(scrub(message))


class RequestError(TokenomyError):
    """An error answered to an API client. Subclasses fix status and code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request_error"
    # OpenAI's ``error.type`` / Anthropic's ``error.type`` for this kind of error.
    openai_type: ClassVar[str] = "invalid_request_error"
    anthropic_type: ClassVar[str] = "invalid_request_error"

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}

    @property
    def error_kind(self) -> str:
        """Recorded on the ledger event of a failed request."""
        return self.code


class AuthenticationError(RequestError):
    status, code = 401, "invalid_api_key"
    openai_type, anthropic_type = "authentication_error", "authentication_error"


class PermissionDenied(RequestError):
    status, code = 403, "permission_denied"
    openai_type, anthropic_type = "permission_error", "permission_error"


class InvalidRequest(RequestError):
    status, code = 400, "invalid_request_error"


class ModelNotFound(RequestError):
    status, code = 404, "model_not_found"
    openai_type, anthropic_type = "invalid_request_error", "not_found_error"


class NotFound(RequestError):
    status, code = 404, "not_found"
    openai_type, anthropic_type = "invalid_request_error", "not_found_error"


class PayloadTooLarge(RequestError):
    status, code = 413, "request_too_large"
    openai_type, anthropic_type = "invalid_request_error", "request_too_large"


class BudgetExceeded(RequestError):
    status, code = 429, "budget_exceeded"
    openai_type, anthropic_type = "insufficient_quota", "rate_limit_error"


class RateLimited(RequestError):
    status, code = 429, "rate_limited"
    openai_type, anthropic_type = "rate_limit_error", "rate_limit_error"


class UpstreamError(RequestError):
    """The upstream provider answered with an HTTP error; its status and message are kept."""

    status, code = 502, "upstream_error"
    openai_type, anthropic_type = "api_error", "api_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        upstream_body: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.upstream_status = upstream_status
        self.upstream_body = upstream_body

    @property
    def http_status(self) -> int:
        return self.upstream_status or self.status


class UpstreamUnavailable(UpstreamError):
    status, code = 502, "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status, code = 504, "upstream_timeout"
    openai_type, anthropic_type = "timeout", "timeout_error"


class InternalError(RequestError):
    """A bug in the gateway; answered as 500 and recorded, never swallowed."""

    status, code = 500, "internal_error"
    openai_type, anthropic_type = "server_error", "api_error"


class ServiceUnavailable(RequestError):
    """A store the call needs (the database) is unreachable; retry after ``Retry-After``."""

    status, code = 503, "service_unavailable"
    openai_type, anthropic_type = "server_error", "overloaded_error"

    def __init__(self, message: str, *, retry_after_s: int = 1, **kw: Any) -> None:
        super().__init__(message, headers={"retry-after": str(max(1, retry_after_s))}, **kw)


class BudgetUnavailable(ServiceUnavailable):
    """A budget needs a new lease (or its definitions) and the database is unreachable."""

    status, code = 503, "budget_unavailable"


class AuthUnavailable(ServiceUnavailable):
    """An API key is not in the cached key table and the database is unreachable."""

    status, code = 503, "auth_unavailable"


class LedgerUnavailable(ServiceUnavailable):
    """The usage journal cannot be written (disk full, I/O error): the call is refused
    before the upstream, since a served call must be recorded."""

    status, code = 503, "ledger_unavailable"


class UnsupportedEncoding(RequestError):
    """The body's ``Content-Encoding`` is not one the gateway can decode."""

    status, code = 415, "unsupported_content_encoding"


class ClientDisconnected(RequestError):
    """The client closed the connection before its request was complete (nobody reads
    the answer; recorded with nginx's 499)."""

    status, code = 499, "client_disconnected"


class RequestTimeout(RequestError):
    """The client stopped sending its request body (no data for ``body_timeout_s``)."""

    status, code = 408, "request_timeout"
    openai_type, anthropic_type = "invalid_request_error", "timeout_error"


class MethodNotAllowed(RequestError):
    """The path exists but not with this method; ``Allow`` lists the methods it takes."""

    status, code = 405, "method_not_allowed"

    def __init__(self, message: str, *, allow: list[str], **kw: Any) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allow)}, **kw)


class Conflict(RequestError):
    """The request is well formed but the current state refuses it (e.g. a transfer
    larger than the giving budget's headroom)."""

    status, code = 409, "conflict"


class TaskCapExceeded(RequestError):
    """A task reached one of its per-task caps (``[tasks]`` in the config).

    Retrying cannot help, so the answer tells the SDKs not to (``x-should-retry``).
    """

    status, code = 429, "task_cap_exceeded"
    openai_type, anthropic_type = "task_cap_exceeded", "rate_limit_error"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, headers={"x-should-retry": "false"}, **kw)


class LocalModelError(TokenomyError):
    """The local lane cannot start or count: no such GGUF file or model package, an
    unsupported tokenizer, or the llama.cpp engine (``tokenomy[local]``) is not installed."""


class DataPolicyRefused(RequestError):
    """The request's data class may not go to any deployment that could serve it (the
    ``[policy]`` section); it was sent nowhere. The message names the class and why."""

    status, code = 403, "data_policy"
    openai_type, anthropic_type = "data_policy", "data_policy"
