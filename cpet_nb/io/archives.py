"""Safe intake of ZIP archives: members are extracted into a temporary folder, within limits.

A ZIP archive (recognised by its magic bytes ``PK\\x03\\x04``, not by its name) is a container
of CPET exports. :func:`extract_zip` copies its members into a fresh temporary folder so
that they can be sniffed and read like files found in a folder. Nothing in the archive is
trusted:

* **Entry count** (default 5,000, folders and skipped junk included) and the size of the
  central directory (at most :data:`CENTRAL_DIRECTORY_BYTES_PER_ENTRY` per allowed entry) are
  checked from the end-of-central-directory record *before* the directory is parsed, so a
  huge directory cannot exhaust memory.
* **Sizes are counted while streaming**, never taken from the headers: every decompressed
  chunk counts toward the member's size (default 10 MB, the per-file limit
  :data:`cpet_nb.io.DEFAULT_MAX_FILE_BYTES`), the member's compression ratio (default
  100:1, enforced once a member has produced :data:`RATIO_GRACE_BYTES`) and the archive's
  total (default 200 MB; refused members count too). A chunk that would cross a limit is
  not written, so the bytes on disk never exceed the limits, and a zip bomb costs at most
  the total limit in decompression work.
* Only *stored* and *deflated* members are extracted: Python's bzip2 and LZMA decoders
  cannot bound their output per call, so a small compressed block could fill memory.
* **Names**: ``..`` components, absolute paths, drive letters (``C:``, in any component) and
  backslash-rooted names are refused, and every target is checked to resolve inside the
  extraction folder; backslashes count as folder separators. Nested folders are kept.
  ``__MACOSX``, ``__pycache__`` and hidden files or folders (leading ``.``) are skipped
  silently, as when walking a folder.
* **Links and special files** (the Unix mode in the external attributes says symlink,
  device, FIFO or socket) and **encrypted** members are refused.
* A **ZIP inside the archive** is not expanded (``nested-archive``). A member that is itself
  a ZIP-based document (an ``.xlsx`` workbook, an OpenDocument file) is kept: see
  :func:`is_archive`.

A problem with one member gives a finding naming the archive and the member, and the other
members are still extracted. A problem with the whole archive (not a ZIP, truncated, too
many entries, over the total) gives one finding for the archive and no files. Nothing here
raises for what an archive contains; the batch goes on with the other inputs.

Finding codes: ``unsafe-archive``, ``corrupt-archive``, ``unsafe-archive-member``,
``encrypted-archive-member``, ``nested-archive`` (see :data:`cpet_nb.findings.CODES`).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..findings import Finding, Severity, UnsupportedFormat
from . import DEFAULT_MAX_FILE_BYTES
from ._files import open_regular
from .registry import SNIFF_BYTES, detect_reader

#: Magic bytes that start a ZIP archive (a local file header).
ZIP_MAGIC = b"PK\x03\x04"
#: Default largest total of decompressed bytes from one archive (200 MB).
DEFAULT_MAX_TOTAL_BYTES = 200_000_000
#: Default largest member (10 MB): the same as the per-file limit.
DEFAULT_MAX_MEMBER_BYTES = DEFAULT_MAX_FILE_BYTES
#: Default largest compression ratio of one member (uncompressed : compressed).
DEFAULT_MAX_RATIO = 100.0
#: Default largest number of entries in an archive's central directory.
DEFAULT_MAX_ENTRIES = 5_000
#: The ratio limit applies once a member has produced this many bytes, so that a small,
#: very repetitive file (a header and a few identical rows) is not mistaken for a bomb.
RATIO_GRACE_BYTES = 1_000_000
#: The central directory may take at most this many bytes per allowed entry (names, extra
#: fields and comments included), checked before it is read into memory.
CENTRAL_DIRECTORY_BYTES_PER_ENTRY = 1024
#: Bytes decompressed per read while copying a member.
CHUNK_BYTES = 64 * 1024
#: Folder and file names skipped in archives (with any name starting with ".").
SKIPPED_NAMES = frozenset({"__MACOSX", "__pycache__"})
#: Compression methods that are extracted, with their names.
ACCEPTED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}

_EOCD = struct.Struct("<4sHHHHLLH")  # end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQHHLLQQQQ")
_DRIVE = re.compile(r"^[A-Za-z]:")
_FILE_TYPES = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
               stat.S_IFSOCK: "a socket"}


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits applied to each archive; the defaults are the module's ``DEFAULT_*`` constants.

    Parameters
    ----------
    max_total_bytes : int
        Decompressed bytes from one archive (all members, refused ones included); over it,
        the whole archive is refused (``unsafe-archive``) and nothing from it is kept.
    max_member_bytes : int
        Decompressed bytes of one member; over it, that member is refused.
    max_ratio : float
        Decompressed bytes over compressed bytes for one member (after
        :data:`RATIO_GRACE_BYTES`); over it, that member is refused.
    max_entries : int
        Entries in the central directory (folders and skipped junk included); over it, the
        archive is refused.
    """

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO
    max_entries: int = DEFAULT_MAX_ENTRIES


@dataclass(frozen=True)
class ExtractedFile:
    """A member written to disk: where it is, and its name in the archive."""

    path: Path
    member: str


@dataclass
class Extraction:
    """What :func:`extract_zip` did with one archive.

    Attributes
    ----------
    archive : Path
        The archive, as given.
    folder : Path or None
        The temporary folder holding the extracted members; the caller removes it when done
        (``shutil.rmtree``). ``None`` when the archive was refused (its folder is already
        gone).
    files : list of ExtractedFile
        Members extracted, in the archive's order (nested archives and refused members not
        included).
    findings : list of Finding
        Refused members, nested archives and, when ``refused``, the reason for the archive.
    refused : bool
        The whole archive was refused.
    bytes_decompressed : int
        Decompressed bytes counted against ``max_total_bytes``.
    """

    archive: Path
    folder: Path | None
    files: list[ExtractedFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    refused: bool = False
    bytes_decompressed: int = 0


class _ArchiveRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class _MemberRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def has_zip_magic(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a readable regular file that starts with the ZIP magic bytes (a
    FIFO, socket or device is never opened: :func:`cpet_nb.io._files.open_regular`)."""
    try:
        with open_regular(path) as fh:
            return fh.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except OSError:
        return False


def is_archive(path: str | os.PathLike, limits: ArchiveLimits | None = None) -> bool:
    """Whether ``path`` is a ZIP archive to expand rather than a file to read.

    True when the file starts with ``PK\\x03\\x04`` and is not a ZIP-based document: one a
    registered reader recognises, an Office Open XML file (``[Content_Types].xml``, e.g. an
    ``.xlsx`` workbook) or an OpenDocument file (first member ``mimetype``). Such documents
    get the treatment of any other file. A ZIP that is broken or over the entry limits is an
    archive, so that :func:`extract_zip` refuses it with a finding.
    """
    path = Path(path)
    if not has_zip_magic(path):
        return False
    limits = limits or ArchiveLimits()
    try:
        _check_directory(path, limits)
    except _ArchiveRefused:
        return True
    try:
        with open_regular(path) as fh:
            head = fh.read(SNIFF_BYTES)
        detect_reader(path, head)
        return False  # a reader's format that happens to be a ZIP
    except UnsupportedFormat:
        pass
    except Exception:  # noqa: BLE001 - a failing sniffer: let the file be read (and reported)
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except Exception:  # noqa: BLE001 - zipfile raises many types on malformed input
        return True
    names = {info.filename for info in infos}
    return not ("[Content_Types].xml" in names or (infos and infos[0].filename == "mimetype"))


def extract_zip(archive: str | os.PathLike, limits: ArchiveLimits | None = None,
                temp_dir: str | os.PathLike | None = None) -> Extraction:
    """Extract the members of a ZIP archive into a new temporary folder, safely.

    Parameters
    ----------
    archive : str or path-like
        The ZIP file.
    limits : ArchiveLimits, optional
        Sizes, ratio and entry count (defaults: :class:`ArchiveLimits`).
    temp_dir : str or path-like, optional
        Where to create the temporary folder (default: the system's temporary folder).

    Returns
    -------
    Extraction
        Members are under ``folder / <archive name> / <member path>``. The caller removes
        ``folder`` when done with the files.
    """
    archive = Path(archive)
    limits = limits or ArchiveLimits()
    try:
        folder = Path(tempfile.mkdtemp(prefix="cpet_nb-zip-", dir=temp_dir))
    except OSError as exc:
        return Extraction(archive, None, findings=[_archive_finding(
            archive, "corrupt-archive", f"no temporary folder to extract into ({exc})")],
            refused=True)
    result = Extraction(archive, folder)
    try:
        _check_directory(archive, limits)
        try:
            zf = zipfile.ZipFile(archive)
        except Exception as exc:  # noqa: BLE001 - zipfile raises many types on malformed input
            raise _ArchiveRefused("corrupt-archive", f"not a readable ZIP file ({_why(exc)})"
                                  ) from None
        with zf:
            infos = zf.infolist()
            if len(infos) > limits.max_entries:
                raise _ArchiveRefused("unsafe-archive", _too_many(len(infos), limits))
            root = folder / (archive.name or "archive")
            for info in infos:
                _extract_member(zf, info, root, limits, result)
    except _ArchiveRefused as exc:
        shutil.rmtree(folder, ignore_errors=True)
        result.folder, result.files, result.refused = None, [], True
        result.findings.append(_archive_finding(archive, exc.code, exc.reason))
    except Exception as exc:  # noqa: BLE001 - an archive must never stop the batch
        shutil.rmtree(folder, ignore_errors=True)
        result.folder, result.files, result.refused = None, [], True
        result.findings.append(_archive_finding(
            archive, "corrupt-archive", f"could not be extracted ({_why(exc)})"))
    return result


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path,
                    limits: ArchiveLimits, result: Extraction) -> None:
    """Extract one member into ``root``, or add a finding saying why not."""
    name = info.filename
    if name.endswith(("/", "\\")):
        return  # folders are created as members need them
    try:
        parts = _safe_parts(name)
        if not parts or any(p.startswith(".") or p in SKIPPED_NAMES for p in parts):
            return  # junk, skipped silently as in folders
        _check_entry(info)
        target = root.joinpath(*parts)
        if not target.resolve().is_relative_to(root.resolve()):  # belt and braces
            raise _MemberRefused("unsafe-archive-member", "path leaves the extraction folder")
        _copy_member(zf, info, target, limits, result)
    except _MemberRefused as exc:
        result.findings.append(_member_finding(result.archive, name, exc.code, exc.reason))
        return
    if has_zip_magic(target) and is_archive(target, limits):
        target.unlink()
        result.findings.append(_member_finding(
            result.archive, name, "nested-archive",
            "is itself a ZIP archive; archives inside archives are not expanded "
            "(extract it and name it directly)", Severity.WARNING))
        return
    result.files.append(ExtractedFile(target, name))


def _safe_parts(name: str) -> list[str]:
    """The path components of a member name, refusing names that could leave the folder."""
    if name.startswith(("/", "\\")):
        raise _MemberRefused("unsafe-archive-member", "absolute path refused")
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
    if any(_DRIVE.match(p) for p in parts):
        raise _MemberRefused("unsafe-archive-member", "drive letter refused")
    if ".." in parts:
        raise _MemberRefused("unsafe-archive-member", "'..' in the path refused (path traversal)")
    if any("\x00" in p for p in parts):
        raise _MemberRefused("unsafe-archive-member", "NUL character in the name refused")
    return parts


def _check_entry(info: zipfile.ZipInfo) -> None:
    """Refuse links, special files, encrypted members and unbounded compression methods."""
    kind = _FILE_TYPES.get(stat.S_IFMT(info.external_attr >> 16))
    if kind:
        raise _MemberRefused("unsafe-archive-member", f"is {kind}; only regular files are "
                             "extracted")
    if info.flag_bits & 0x1:
        raise _MemberRefused("encrypted-archive-member",
                             "is encrypted (password-protected); not extracted. Extract it "
                             "yourself and analyse the file")
    if info.compress_type not in ACCEPTED_METHODS:
        raise _MemberRefused("unsafe-archive-member",
                             f"uses compression method {info.compress_type}; only stored and "
                             "deflated members are extracted (re-create the ZIP with the "
                             "default 'deflate' compression)")


def _create(path: Path) -> BinaryIO:
    """Open a new member file for writing (never an existing file or link)."""
    return open(path, "xb")


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path,
                 limits: ArchiveLimits, result: Extraction) -> None:
    """Stream one member to ``target``, counting bytes; refuse it (or the archive) at a limit."""
    try:
        if target.exists():
            raise _MemberRefused("unsafe-archive-member",
                                 "appears more than once in the archive; the first was kept")
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = _create(target)
    except OSError as exc:
        raise _MemberRefused("corrupt-archive", f"could not be written ({_why(exc)})") from None
    compressed = max(info.compress_size, 1)
    written = 0
    try:
        with dst, zf.open(info) as src:
            while chunk := src.read(CHUNK_BYTES):
                result.bytes_decompressed += len(chunk)
                if result.bytes_decompressed > limits.max_total_bytes:
                    raise _ArchiveRefused(
                        "unsafe-archive",
                        f"decompresses to more than the limit of {limits.max_total_bytes:,} "
                        "bytes in total (a zip bomb?); nothing from it was kept")
                size = written + len(chunk)
                if size > limits.max_member_bytes:
                    raise _MemberRefused(
                        "unsafe-archive-member",
                        f"decompresses to more than the limit of {limits.max_member_bytes:,} "
                        "bytes; extraction stopped there")
                if size > RATIO_GRACE_BYTES and size / compressed > limits.max_ratio:
                    raise _MemberRefused(
                        "unsafe-archive-member",
                        f"compression ratio above {limits.max_ratio:g}:1 ({size:,} bytes from "
                        f"{info.compress_size:,} compressed, a zip bomb?); extraction stopped")
                dst.write(chunk)
                written = size
    except (_MemberRefused, _ArchiveRefused):
        target.unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 - bad CRC, bad header, corrupt deflate data, I/O
        target.unlink(missing_ok=True)
        raise _MemberRefused("corrupt-archive", f"could not be extracted ({_why(exc)})"
                             ) from None


def _check_directory(path: Path, limits: ArchiveLimits) -> None:
    """Check entry count and central directory size from the end record, before parsing."""
    try:
        entries, directory_bytes = _directory_size(path)
    except OSError as exc:
        raise _ArchiveRefused("corrupt-archive", f"could not be read ({_why(exc)})") from None
    if entries > limits.max_entries:
        raise _ArchiveRefused("unsafe-archive", _too_many(entries, limits))
    most = limits.max_entries * CENTRAL_DIRECTORY_BYTES_PER_ENTRY
    if directory_bytes > most:
        raise _ArchiveRefused("unsafe-archive", f"its central directory takes {directory_bytes:,} "
                              f"bytes, more than the limit of {most:,}")


def _directory_size(path: Path) -> tuple[int, int]:
    """(entries, central directory bytes) from the end-of-central-directory record(s)."""
    with open_regular(path) as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - (_EOCD.size + 0xFFFF))  # the record and the longest comment
        fh.seek(start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD.size:
            raise _ArchiveRefused("corrupt-archive", "not a complete ZIP file (no end of "
                                  "central directory record: truncated?)")
        *_, entries, directory_bytes, _, _ = _EOCD.unpack_from(tail, at)
        if entries != 0xFFFF and directory_bytes != 0xFFFFFFFF:
            return entries, directory_bytes
        locator = start + at - _EOCD64_LOCATOR.size
        if locator < _EOCD64.size:
            return entries, directory_bytes
        fh.seek(locator - _EOCD64.size)
        record = fh.read(_EOCD64.size + _EOCD64_LOCATOR.size)
    if record[_EOCD64.size:_EOCD64.size + 4] != b"PK\x06\x07":
        return entries, directory_bytes  # not ZIP64: the values are what they say
    if record[:4] != b"PK\x06\x06":
        raise _ArchiveRefused("corrupt-archive", "broken ZIP64 end of central directory record")
    fields = _EOCD64.unpack_from(record)
    return fields[7], fields[8]


def _too_many(entries: int, limits: ArchiveLimits) -> str:
    return f"{entries:,} entries, more than the limit of {limits.max_entries:,}"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _archive_finding(archive: Path, code: str, reason: str) -> Finding:
    return Finding(code, Severity.ERROR, f"archive {str(archive)!r} not expanded: {reason}",
                   file=str(archive))


def _member_finding(archive: Path, member: str, code: str, reason: str,
                    severity: Severity = Severity.ERROR) -> Finding:
    return Finding(code, severity, f"archive {str(archive)!r}, member {member!r}: {reason}",
                   file=f"{archive}/{member}")
