"""Canonical image and document parts → Converse ``image`` / ``document`` blocks
(protocols.md §3, "Converse request").

Used by ``bedrock_request`` for user turns and tool results alike:

- images go with their bytes and an ``ImageFormat``, taken from the media type or, when
  there is none, sniffed from the magic bytes; a remote image URL is refused;
- documents go with their bytes, a ``DocumentFormat`` from the media type, and a name
  Bedrock accepts (``document_name``), distinct within the request (``DocumentNames``);
  a URL-only document is refused, as the gateway fetches nothing.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import re

import msgspec

from skyroute.core.chat import DocumentPart, ImagePart
from skyroute.core.errors import InvalidRequest

__all__ = [
    "DocumentBlock",
    "DocumentNames",
    "ImageBlock",
    "document_block",
    "document_name",
    "image_block",
]


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    pass


class _ImageSource(_Wire):
    data: bytes = msgspec.field(name="bytes")  # base64 in JSON, as msgspec writes bytes


class _Image(_Wire):
    format: str
    source: _ImageSource


class ImageBlock(_Wire):
    image: _Image


class _DocumentSource(_Wire):
    data: bytes = msgspec.field(name="bytes")  # base64 in JSON, as msgspec writes bytes


class _Document(_Wire):
    format: str
    name: str
    source: _DocumentSource


class DocumentBlock(_Wire):
    document: _Document


# --- images ---------------------------------------------------------------------------

_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def image_block(part: ImagePart, param: str) -> ImageBlock:
    if part.data is None:
        raise InvalidRequest(
            "Remote image URLs are not fetched for this deployment; send the image as a "
            "base64 data URL.",
            param=param,
        )
    image_format = _FORMATS.get(part.media_type or "") or _sniff_format(part.data)
    if image_format is None:
        raise InvalidRequest(
            "Bedrock accepts png, jpeg, gif and webp images (ImageFormat in protocols.md §3).",
            param=param,
        )
    if not part.data:
        raise InvalidRequest("The image is empty.", param=param)
    return ImageBlock(image=_Image(format=image_format, source=_ImageSource(data=part.data)))


def _sniff_format(data: bytes) -> str | None:
    """The format from the file's magic bytes, for images that came without a media type."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


# --- documents ------------------------------------------------------------------------

# DocumentFormat in protocols.md §3.
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_NAME_MAX = 200
_NAME_REFUSED = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")
_WHITESPACE = re.compile(r"\s+")


def document_name(name: str | None, n: int) -> str:
    """A document name Bedrock accepts: alphanumerics, single whitespace characters,
    hyphens, parentheses and square brackets, at most 200 characters. Any other
    character becomes a hyphen (``report.pdf`` → ``report-pdf``) and whitespace runs one
    space; a name with nothing left is ``document-<n>``."""
    cleaned = _WHITESPACE.sub(" ", _NAME_REFUSED.sub("-", name or ""))
    cleaned = cleaned.strip()[:_NAME_MAX].rstrip()
    return cleaned if cleaned.strip("-") else f"document-{n}"


class DocumentNames:
    """Names for a request's documents, in order: each one distinct, as Bedrock wants."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, name: str | None) -> str:
        n = len(self._taken) + 1
        chosen = document_name(name, n)
        k = 2
        while chosen in self._taken:
            suffix = f" ({k})"
            chosen = document_name(name, n)[: _NAME_MAX - len(suffix)].rstrip() + suffix
            k += 1
        self._taken.add(chosen)
        return chosen


def document_block(part: DocumentPart, param: str, names: DocumentNames) -> DocumentBlock:
    if part.data is None:
        raise InvalidRequest(
            "Remote document URLs are not fetched for this deployment; send the document "
            "as base64 data.",
            param=param,
        )
    document_format = _DOCUMENT_FORMATS.get(part.media_type.lower())
    if document_format is None:
        raise InvalidRequest(
            "Bedrock accepts pdf, csv, doc, docx, xls, xlsx, html, txt and md documents "
            f"(DocumentFormat in protocols.md §3), not {part.media_type!r}.",
            param=param,
        )
    if not part.data:
        raise InvalidRequest("The document is empty.", param=param)
    document = _Document(
        format=document_format, name=names.take(part.name), source=_DocumentSource(data=part.data)
    )
    return DocumentBlock(document=document)
