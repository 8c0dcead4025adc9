"""The one error hierarchy of Stratus.

Domain code raises these; one middleware (``stratus.api.app``) renders them in
the fault format of the service that answers (Keystone, Nova, Neutron...).
Anything else that escapes a handler is logged and rendered as a 500 that
carries the request id, never a traceback.
"""

from __future__ import annotations

from http import HTTPStatus


class StratusError(Exception):
    """Base class: an error with an HTTP status and a message for the client.

    ``kind`` names the error for formats that carry a type, such as Neutron's
    ``{"NeutronError": {"type": "NetworkNotFound", ...}}``.
    """

    status: int = 500
    default_message = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, kind: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.kind = kind or type(self).__name__
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(StratusError):
    status = 400
    default_message = "The request is malformed."


class Unauthorized(StratusError):
    status = 401
    default_message = "The request you have made requires authentication."


class Forbidden(StratusError):
    status = 403
    default_message = "You are not authorized to perform the requested action."


class NotFound(StratusError):
    status = 404
    default_message = "The resource could not be found."


class MethodNotAllowed(StratusError):
    status = 405
    default_message = "The method is not allowed for this resource."


class NotAcceptable(StratusError):
    status = 406
    default_message = "The requested version or media type is not supported."


class Conflict(StratusError):
    status = 409
    default_message = "The request conflicts with the current state of the resource."


class Gone(StratusError):
    status = 410


class PayloadTooLarge(StratusError):
    status = 413
    default_message = "The request body is too large."


class OverQuota(StratusError):
    """A quota would be exceeded (413 for Nova/Glance, 409 for Neutron)."""

    status = 413
    default_message = "Quota exceeded."


class UnsupportedMediaType(StratusError):
    status = 415
    default_message = "The request media type is not supported."


class RangeNotSatisfiable(StratusError):
    status = 416
    default_message = "The requested range is not satisfiable."


class TooManyRequests(StratusError):
    status = 429


class NotImplementedYet(StratusError):
    status = 501
    default_message = "This operation is not implemented."


class ServiceUnavailable(StratusError):
    status = 503
    default_message = "The service is temporarily unavailable."


class RPCTimeout(StratusError):
    """A bus call got no answer in time (no listener, or a listener too slow)."""

    status = 504
    default_message = "Timed out waiting for a reply on the message bus."


class RemoteError(StratusError):
    """A bus call's server raised; carries the remote class name and message."""

    status = 500

    def __init__(self, exc_type: str, message: str, status: int = 500) -> None:
        self.exc_type = exc_type
        super().__init__(f"{exc_type}: {message}", kind=exc_type)
        self.status = status
        self.remote_message = message
