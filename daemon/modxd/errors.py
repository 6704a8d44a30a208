"""Domain errors. Each carries a sentence for people; api/status.py maps them to gRPC codes.

The engine and the store raise these (or plain ValueError from the engine's
pure modules, which the validation layer translates); nothing below the API
layer knows about gRPC.
"""
from __future__ import annotations


class ModxError(Exception):
    """Base class: `str(err)` is the sentence the client sees."""


class InvalidArgument(ModxError):
    """The request itself is wrong (a bad value, a malformed data line)."""


class NotFound(ModxError):
    """A named task, checkpoint, template, evaluation or package does not exist."""


class FailedPrecondition(ModxError):
    """The request is fine but the world is not in a state that allows it."""


class ResourceExhausted(ModxError):
    """Quota, queue, memory or size limits."""


class PermissionDenied(ModxError):
    """A path outside the allowed roots, or a role that may not do this."""


class Unauthenticated(ModxError):
    """No valid credentials."""


class Unavailable(ModxError):
    """The daemon is shutting down or a dependency is missing."""


class Unimplemented(ModxError):
    """An RPC of the contract that this version does not implement yet."""
