"""The one error tree of skyroute.

Every failure that can reach a client is a ``GatewayError``. Each carries, as required
data, the HTTP status it maps to, whose fault it is, whether the same deployment may be
tried again and whether another deployment may be tried instead. Foreign exceptions
(sockets, JSON, upstream bodies) are mapped to this tree at exactly one boundary each:
the transport maps OS and protocol errors, each provider maps upstream error bodies
through its own table, and the server edge maps anything else to ``InternalError``.

    GatewayError
    ├── ClientError                    the caller's request is wrong (4xx, never retried)
    │   ├── InvalidRequest             400 invalid_request_error
    │   ├── AuthenticationFailed       401 (one body for every bad key)
    │   ├── PermissionDenied           403 an admin action outside the caller's role or team
    │   ├── ModelNotFound              404 model_not_found (also: not on the key's list)
    │   ├── ObjectNotFound             404 an admin object (key, team) that does not exist
    │   ├── Conflict                   409 an admin object that already exists
    │   ├── RateLimited                429 rate_limit_exceeded: a key's or team's own limit
    │   ├── QuotaExceeded              429 insufficient_quota: a key's or team's budget
    │   ├── RouteNotFound              404 for unknown paths
    │   ├── MethodNotAllowed           405
    │   ├── BodyTooLarge               413
    │   └── ContentFiltered            400 content_filter, propagated from a provider
    ├── UpstreamError                  a provider failed us (maybe another one will not)
    │   ├── UpstreamRateLimited        429 (cooldown from Retry-After)
    │   ├── UpstreamUnavailable        5xx, connection refused or reset
    │   ├── UpstreamTimeout            connect / first token / idle timeouts
    │   ├── UpstreamRejected           4xx that is the provider's or config's fault (401, 404)
    │   ├── UpstreamBadRequest         400 the provider blames on the request
    │   ├── ContextLengthExceeded      400 context_length_exceeded (fall back, don't retry)
    │   └── UpstreamProtocolError      malformed response or stream
    └── GatewayFault                   our own trouble
        ├── ServiceUnavailable         503 draining or overloaded
        ├── NoCapacity                 every deployment is rate limited or open-circuited
        └── InternalError              500, a bug: logged at the server edge only
"""

from __future__ import annotations

import enum
from typing import ClassVar


class Fault(enum.Enum):
    """Whose fault an error is; decides logging level and circuit-breaker accounting."""

    CLIENT = "client"
    PROVIDER = "provider"
    GATEWAY = "gateway"


class GatewayError(Exception):
    """Base of every error skyroute answers with.

    ``message`` is safe to show to a client: it never holds an upstream URL, key or
    stack trace. ``retry_after`` (seconds) is set when the client should wait.
    """

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    # A class default that an instance may override (an upstream's own code), so not a
    # ClassVar.
    code: str | None = None
    fault: ClassVar[Fault] = Fault.GATEWAY
    retry_same: ClassVar[bool] = False
    try_another: ClassVar[bool] = False
    # The HTTP status the upstream answered with, when an upstream answer caused this
    # error (the usage ledger records it; ``status`` is what the client gets).
    upstream_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


# --- the caller's fault -------------------------------------------------------------


class ClientError(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    fault = Fault.CLIENT


class InvalidRequest(ClientError):
    pass


class AuthenticationFailed(ClientError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"

    def __init__(self) -> None:
        # One message for every kind of bad key, so keys cannot be enumerated.
        super().__init__("Invalid or missing API key.")


class PermissionDenied(ClientError):
    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class ObjectNotFound(ClientError):
    status = 404
    code = "not_found"


class Conflict(ClientError):
    status = 409
    code = "conflict"


class RateLimited(ClientError):
    """The caller's own key or team limit (requests, tokens or parallel requests)."""

    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QuotaExceeded(ClientError):
    """The caller's key or team budget is spent for the period (OpenAI's wording)."""

    status = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class ModelNotFound(ClientError):
    status = 404
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        shown = model if len(model) <= 200 else model[:200] + "..."
        super().__init__(f"The model '{shown}' does not exist.", param="model")


class RouteNotFound(ClientError):
    status = 404
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("Unknown request URL.")


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"

    def __init__(self) -> None:
        super().__init__("Method not allowed for this URL.")


class BodyTooLarge(ClientError):
    status = 413
    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit} bytes.")


class ContentFiltered(ClientError):
    """The provider's content filter refused the prompt; trying elsewhere won't help."""

    code = "content_filter"


# --- the provider's fault -----------------------------------------------------------


class UpstreamError(GatewayError):
    status = 502
    error_type = "api_error"
    fault = Fault.PROVIDER
    try_another = True


class UpstreamRateLimited(UpstreamError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retry_same = True


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"
    retry_same = True


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamRejected(UpstreamError):
    """4xx that says the deployment or its credentials are wrong, not the request."""

    status = 502
    code = "upstream_rejected"


class UpstreamBadRequest(UpstreamError):
    """A 400 the provider blames on the request: another provider would refuse it too."""

    status = 400
    error_type = "invalid_request_error"
    fault = Fault.CLIENT
    try_another = False


class ContextLengthExceeded(UpstreamError):
    """Too long for this model: no retry, and only the model's fallbacks may help."""

    status = 400
    error_type = "invalid_request_error"
    code = "context_length_exceeded"
    fault = Fault.CLIENT
    try_another = False


class UpstreamProtocolError(UpstreamError):
    status = 502
    code = "upstream_protocol_error"
    retry_same = True


# --- our own fault ------------------------------------------------------------------


class GatewayFault(GatewayError):
    fault = Fault.GATEWAY


class ServiceUnavailable(GatewayFault):
    status = 503
    error_type = "api_error"
    code = "service_unavailable"


class NoCapacity(GatewayFault):
    """No deployment could take the request right now (quotas spent, circuits open)."""

    status = 503
    error_type = "api_error"
    code = "no_capacity"


class InternalError(GatewayFault):
    status = 500
    code = "internal_error"

    def __init__(self) -> None:
        super().__init__("The gateway failed to handle the request.")
