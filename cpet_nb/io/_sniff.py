"""Small helpers readers use to look at the first bytes of a file."""

from __future__ import annotations


def head_lines(head: bytes, n: int = 40) -> list[str]:
    """The first ``n`` lines of ``head`` as text (UTF-8 with BOM, else Latin-1); [] if binary."""
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
