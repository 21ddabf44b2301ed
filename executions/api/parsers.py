"""JSON request bodies, plain or gzip-compressed (`Content-Encoding: gzip`, as the cognite-sdk
sends them), with one cap on the size after decompression (settings.REDRIVE_MAX_BODY_BYTES).

Decompression is incremental with a bounded output, so a small "zip bomb" is refused after
reading at most the cap, never inflated in memory.
"""

from __future__ import annotations

import io
import zlib

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from .errors import PayloadTooLarge

CHUNK = 64 * 1024


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than {limit} bytes.")


def read_body(stream, encoding: str, limit: int) -> bytes:
    """The request body, decoded per Content-Encoding, or an APIException (400, 413, 415)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise _too_large(limit)
        return data
    if encoding not in ("gzip", "x-gzip"):
        raise exceptions.UnsupportedMediaType(
            encoding, detail=f"Content-Encoding {encoding!r} is not supported; use gzip."
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    read = 0
    try:
        while not inflater.eof:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            read += len(chunk)
            if read > limit:
                raise _too_large(limit)
            out += inflater.decompress(chunk, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise _too_large(limit)
    except zlib.error:
        raise exceptions.ParseError("Request body is not valid gzip data.") from None
    if not inflater.eof:
        raise exceptions.ParseError("Request body is not valid gzip data (truncated).")
    return bytes(out)


class GzipJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context.get("request")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else ""
        body = read_body(stream, encoding, settings.REDRIVE_MAX_BODY_BYTES)
        if not body.strip():
            return {}
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except exceptions.ParseError as exc:
            raise exceptions.ParseError(f"Request body is not valid JSON ({exc.detail}).") from None
        except RecursionError:
            # The json module recurses once per nesting level: `[[[[...` 100,000 deep is a bad
            # request, not a 500.
            raise exceptions.ParseError(
                "Request body is not valid JSON (nested too deeply)."
            ) from None
