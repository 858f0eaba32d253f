"""Redaction of secrets that can ride inside a URL: signed-URL query parameters and ``user:password@``.

Every message vidloader builds from a path or a store's error goes through ``redact``: error messages (in
``VidloaderError``), skip reports, and every record of the ``vidloader`` logger (a filter installed here),
so a pre-signed URL in a manifest never leaks its signature into logs."""

from __future__ import annotations

import logging
import re

__all__ = ["redact"]

# user[:password]@ right after a scheme.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@?#]+@")
# Query parameters that carry signatures, credentials or tokens: S3 (X-Amz-Signature, X-Amz-Credential,
# X-Amz-Security-Token, AWSAccessKeyId, Signature), GCS (X-Goog-Signature, X-Goog-Credential), Azure SAS
# (sig), CloudFront (Policy, Key-Pair-Id) and the generic token/key/secret/password/auth names.
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:[^=&\s\"']*?)(?:signature|credential|token|key|sig|secret|password|passwd|policy|auth)"
    r"(?:[^=&\s\"']*)=)[^&\s\"'#]*",
    re.IGNORECASE,
)
# An AWS access key id anywhere in the text (the secret key itself never enters vidloader's strings).
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")


def redact(text: str) -> str:
    """``text`` with URL credentials and signature parameters replaced by ``***``."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _SECRET_PARAM.sub(r"\g<key>***", text)
    return _ACCESS_KEY_ID.sub("***", text)


class _RedactRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


logging.getLogger("vidloader").addFilter(_RedactRecords())
