"""Small helpers readers use to look at the first bytes of a file."""

from __future__ import annotations

#: Byte-order marks of UTF-16 text (some Windows cart software exports it).
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def utf16_text(data: bytes) -> str | None:
    """``data`` decoded as UTF-16 when it starts with a UTF-16 byte-order mark, else None.

    An odd trailing byte (a cut after the first bytes of a file) is ignored.
    """
    if not data.startswith(UTF16_BOMS):
        return None
    return data[: len(data) - len(data) % 2].decode("utf-16", errors="replace")


def head_lines(head: bytes, n: int = 40) -> list[str]:
    """The first ``n`` lines of ``head`` as text (UTF-16 with BOM, UTF-8, else Latin-1).

    Returns ``[]`` for binary content (NUL bytes in text that is not UTF-16).
    """
    utf16 = utf16_text(head)
    if utf16 is not None:
        return utf16.splitlines()[:n]
    if b"\x00" in head[:4096]:
        return []
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # the 64 KiB cut split a multi-byte character
            text = head[: exc.start].decode("utf-8-sig")
        else:
            text = head.decode("latin-1")
    return text.splitlines()[:n]


def header_fields(head: bytes, delimiter: str = ",", comment: str = "#") -> list[str]:
    """Fields of the first line that is neither blank nor a comment."""
    for line in head_lines(head):
        if line.strip() and not line.lstrip().startswith(comment):
            return [field.strip().strip('"') for field in line.split(delimiter)]
    return []
