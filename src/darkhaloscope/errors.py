"""One error hierarchy for darkhaloscope.

Every error is a :class:`DarkHaloScopeError` and also subclasses the matching builtin
(``ValueError`` for bad values, ``OSError`` for files and storage), so callers can catch
either. Errors carry structured fields (``field``, ``path``, ``row``) and pickle with them
intact, so an error raised on a Spark executor reaches the driver unchanged.

Credentials never belong in a message: :func:`redact` strips secrets from any text that
is put into an error, a log line or a manifest.
"""

from __future__ import annotations

import os
import re
from typing import Any

_SECRET_PATTERNS = [
    # key=value forms: aws_secret_access_key=..., secret_key=..., token=..., password=..., also
    # JSON ("SecretAccessKey": "...") and presigned URLs (X-Amz-Signature=..., a bearer credential)
    re.compile(
        r"(?i)((?:aws_)?(?:secret[_-]?(?:access[_-]?)?key|session[_-]?token|access[_-]?key(?:[_-]?id)?|token|password|signature)"
        r"[\"']?\s*[=:]\s*[\"']?)([^\s,;&'\"]+)"
    ),
    # userinfo in URLs: scheme://user:secret@host
    re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)"),
    # AWS access key ids
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
]
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def redact(text: str) -> str:
    """Return ``text`` with credentials (keys, tokens, passwords, URL userinfo) masked."""
    out = str(text)
    out = _SECRET_PATTERNS[0].sub(lambda m: m.group(1) + "***", out)
    out = _SECRET_PATTERNS[1].sub(lambda m: m.group(1) + "***" + m.group(3), out)
    out = _SECRET_PATTERNS[2].sub("***", out)
    for var in _SECRET_ENV:  # the live secrets themselves, in whatever form they appear
        value = os.environ.get(var, "")
        if len(value) >= 16:
            out = out.replace(value, "***")
    return out


class DarkHaloScopeError(Exception):
    """Base class of every darkhaloscope error.

    Parameters
    ----------
    message:
        What went wrong, in words a user can act on.
    **fields:
        Structured context (``field``, ``path``, ``row``, ``reason`` ...), kept as attributes
        and in :attr:`fields`, and appended to the message.
    """

    def __init__(self, message: str, **fields: Any) -> None:
        self.message = redact(message)
        self.fields = {k: (redact(v) if isinstance(v, str) else v) for k, v in fields.items()}
        for key, value in self.fields.items():
            setattr(self, key, value)
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.fields:
            return self.message
        context = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.message} [{context}]"

    def __reduce__(self):  # keep fields across pickling (Spark executors -> driver)
        return (_rebuild_error, (type(self), self.message, self.fields))

    def __str__(self) -> str:
        return self._render()


def _rebuild_error(cls: type, message: str, fields: dict[str, Any]) -> DarkHaloScopeError:
    return cls(message, **fields)


class ConfigError(DarkHaloScopeError, ValueError):
    """A config value is unknown, missing, of the wrong type or out of range (``field``)."""


class DataFileError(DarkHaloScopeError, OSError):
    """A data file is missing, truncated, corrupt or of the wrong format (``path``)."""


class CatalogError(DarkHaloScopeError, ValueError):
    """A catalog lacks a column or holds a value that cannot be used (``path``, ``row``, ``field``)."""


class CutoutError(DarkHaloScopeError, ValueError):
    """A cutout cannot be made (``reason``, ``path``). Pipelines turn it into ``cutout_ok=false``."""


class BankError(DarkHaloScopeError, ValueError):
    """The source bank or the COSMOS catalog it is built from is unusable (``path``)."""


class PhysicsError(DarkHaloScopeError, ValueError):
    """Injection parameters or arrays are not physical (``field``)."""


class StorageError(DarkHaloScopeError, OSError):
    """Reading or writing local / S3 storage failed (``path``)."""


class DatasetError(DarkHaloScopeError, ValueError):
    """A stamp dataset is incomplete or inconsistent with its manifest (``path``)."""


class SecurityError(DarkHaloScopeError, ValueError):
    """Input tried something unsafe: a path escaping its root, a pickled NPZ (``path``)."""


class GateFailure(DarkHaloScopeError, AssertionError):
    """A dataset quality gate failed (``gate``, ``figure``, ``threshold``)."""
