"""Safe intake of ZIP archives (cpet_nb.io.archives, cpet_nb.io.inputs). Every archive is made
here."""

import gc
import io
import os
import shutil
import stat
import struct
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from synthetic import ramp_test, write_canonical_csv

from cpet_nb.cli import main
from cpet_nb.findings import Severity
from cpet_nb.io import archives
from cpet_nb.io.archives import ArchiveLimits, extract_zip, is_archive
from cpet_nb.io.inputs import expand_inputs

MB = 1_000_000


@pytest.fixture(scope="module")
def csv_bytes(tmp_path_factory) -> list[bytes]:
    """Two canonical CSVs (synthetic ramp tests) as bytes."""
    folder = tmp_path_factory.mktemp("csv")
    out = []
    for seed in (1, 2):
        path = folder / f"t{seed}.csv"
        write_canonical_csv(ramp_test(seed=seed), path, weight_kg=70)
        out.append(path.read_bytes())
    return out


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A 50 MB member of zeros, deflated to about 50 KB, next to a canonical CSV."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.csv", "t,VO2\n1,2\n")
        with zf.open("zeros.csv", "w") as fh:
            for _ in range(50):
                fh.write(bytes(MB))
    assert path.stat().st_size < 200_000
    return path


def make_zip(path: Path, members: dict, method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A ZIP with ``members`` (name or ZipInfo -> bytes), written with the given method."""
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture()
def temp_root(tmp_path) -> Path:
    """Where the tests' temporary extraction folders go, to check that they are removed."""
    root = tmp_path / "extract"
    root.mkdir()
    return root


@pytest.fixture()
def record_writes(monkeypatch):
    """Record the on-disk size of every extracted file after each write."""
    sizes: dict[Path, int] = {}

    class Recorder:
        def __init__(self, path: Path) -> None:
            self.path, self.fh = path, open(path, "xb")

        def write(self, data: bytes) -> int:
            n = self.fh.write(data)
            self.fh.flush()
            sizes[self.path] = os.fstat(self.fh.fileno()).st_size
            return n

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.fh.close()

    monkeypatch.setattr(archives, "_create", Recorder)
    return sizes


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_nested_folders_kept_and_junk_skipped(tmp_path, temp_root, csv_bytes):
    archive = make_zip(tmp_path / "tests.zip", {
        "exports/": b"",
        "exports/2024/march/a.csv": csv_bytes[0],
        "exports\\windows\\b.csv": csv_bytes[1],  # backslashes are folder separators
        "__MACOSX/exports/2024/march/._a.csv": b"\x00\x05\x16\x07 resource fork",
        "exports/.DS_Store": b"\x00\x00\x00\x01Bud1",
        ".hidden/c.csv": csv_bytes[0],
        "exports/__pycache__/x.pyc": b"\x00",
    })
    assert is_archive(archive)
    with expand_inputs([archive], temp_dir=temp_root) as inputs:
        assert inputs.findings == [] and inputs.skipped == []
        assert [f.label for f in inputs.files] == [f"{archive}/exports/2024/march/a.csv",
                                                   f"{archive}/exports\\windows\\b.csv"]
        assert [f.path.read_bytes() for f in inputs.files] == csv_bytes
        assert all(not f.explicit and f.archive == archive for f in inputs.files)
        assert inputs.files[1].path.parts[-3:] == ("exports", "windows", "b.csv")
        assert len(inputs.temp_dirs) == 1 and inputs.temp_dirs[0].parent == temp_root
        extracted = sorted(p.name for p in temp_root.rglob("*") if p.is_file())
        assert extracted == ["a.csv", "b.csv"]
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize("name", ["../evil.csv", "a/../../evil.csv", "/abs.csv", "C:\\x.csv",
                                  "c:x.csv", "\\\\server\\share\\x.csv", "..\\evil.csv",
                                  "sub/D:evil.csv"])
def test_path_traversal_refused(tmp_path, temp_root, csv_bytes, name):
    archive = make_zip(tmp_path / "evil.zip", {name: csv_bytes[0], "good.csv": csv_bytes[1]})
    result = extract_zip(archive, temp_dir=temp_root)
    assert [f.member for f in result.files] == ["good.csv"]
    (finding,) = result.findings
    assert finding.code == "unsafe-archive-member" and finding.severity is Severity.ERROR
    assert finding.file == f"{archive}/{name}"  # the member is the input it is about
    assert repr(name) in finding.message and str(archive) in finding.message
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["evil.zip", "good.csv"]  # nothing escaped


def test_symlink_member_refused(tmp_path, temp_root, csv_bytes):
    link = zipfile.ZipInfo("link.csv")
    link.create_system = 3  # Unix
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo("pipe.csv")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(link, "../../../etc/passwd")
        zf.writestr(fifo, "")
        zf.writestr("real.csv", csv_bytes[0])
    result = extract_zip(archive, temp_dir=temp_root)
    assert [f.member for f in result.files] == ["real.csv"]
    assert codes(result.findings) == ["unsafe-archive-member"] * 2
    assert "symbolic link" in result.findings[0].message
    assert "'link.csv'" in result.findings[0].message
    assert "FIFO" in result.findings[1].message
    assert not any(p.is_symlink() for p in temp_root.rglob("*"))


def test_zip_bomb_refused_while_streaming(bomb, temp_root, record_writes):
    limit = MB
    result = extract_zip(bomb, ArchiveLimits(max_member_bytes=limit, max_ratio=1e12),
                         temp_dir=temp_root)
    assert [f.member for f in result.files] == ["ok.csv"]
    (finding,) = result.findings
    assert finding.code == "unsafe-archive-member" and "'zeros.csv'" in finding.message
    assert f"{limit:,} bytes" in finding.message
    assert max(record_writes.values()) <= limit  # on disk, never more than the limit
    assert result.bytes_decompressed <= limit + archives.CHUNK_BYTES + 100  # stopped early
    assert [p.name for p in temp_root.rglob("*") if p.is_file()] == ["ok.csv"]


def test_compression_ratio_refused_with_default_limits(bomb, temp_root, record_writes):
    result = extract_zip(bomb, temp_dir=temp_root)
    (finding,) = result.findings
    assert finding.code == "unsafe-archive-member" and "compression ratio" in finding.message
    assert max(record_writes.values()) <= archives.DEFAULT_MAX_RATIO * bomb.stat().st_size
    assert result.bytes_decompressed < 10 * MB


def test_total_size_refuses_the_archive(tmp_path, temp_root, record_writes):
    archive = make_zip(tmp_path / "big.zip",
                       {f"part{i}.csv": os.urandom(400_000) for i in range(5)})
    limits = ArchiveLimits(max_total_bytes=MB)
    result = extract_zip(archive, limits, temp_dir=temp_root)
    assert result.refused and result.folder is None and result.files == []
    (finding,) = result.findings
    assert finding.code == "unsafe-archive" and finding.file == str(archive)
    assert "in total" in finding.message
    assert sum(record_writes.values()) <= MB
    assert list(temp_root.iterdir()) == []


def test_too_many_entries(tmp_path, temp_root):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(30)})
    result = extract_zip(archive, ArchiveLimits(max_entries=20), temp_dir=temp_root)
    assert result.refused and codes(result.findings) == ["unsafe-archive"]
    assert "30 entries" in result.findings[0].message
    assert list(temp_root.iterdir()) == []
    assert extract_zip(archive, ArchiveLimits(max_entries=30), temp_dir=temp_root).files


def test_entry_count_checked_before_the_directory_is_parsed(tmp_path, temp_root, monkeypatch):
    """The end record's count (also from a ZIP64 end record) is checked before zipfile runs."""
    buf = io.BytesIO()
    with mock.patch.object(zipfile, "ZIP_FILECOUNT_LIMIT", 5):  # forces ZIP64 end records
        with zipfile.ZipFile(buf, "w") as zf:
            for i in range(10):
                zf.writestr(f"f{i}.txt", b"x")
    data = bytearray(buf.getvalue())
    assert b"PK\x06\x06" in data
    at = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HHL", data, at + 8, 0xFFFF, 0xFFFF, 0xFFFFFFFF)  # "see ZIP64 record"
    archive = tmp_path / "z64.zip"
    archive.write_bytes(data)

    def never(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZipFile", never)
        result = extract_zip(archive, ArchiveLimits(max_entries=9), temp_dir=temp_root)
    assert codes(result.findings) == ["unsafe-archive"] and "10 entries" in str(result.findings)
    result = extract_zip(archive, ArchiveLimits(max_entries=10), temp_dir=temp_root)
    assert len(result.files) == 10 and result.findings == []
    # a central directory too large for the entries allowed is refused too
    monkeypatch.setattr(archives, "CENTRAL_DIRECTORY_BYTES_PER_ENTRY", 10)
    result = extract_zip(archive, ArchiveLimits(max_entries=10), temp_dir=temp_root)
    assert result.refused and "central directory" in result.findings[0].message


def _set_encrypted_flag(data: bytes, name: str) -> bytes:
    """Set bit 0 (encrypted) of the general-purpose flags of ``name``'s two headers."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        offset = zf.getinfo(name).header_offset
    out = bytearray(data)
    assert out[offset:offset + 4] == b"PK\x03\x04"
    out[offset + 6] |= 0x01  # local file header: flags at +6
    encoded = name.encode()
    at = out.find(b"PK\x01\x02")
    while at >= 0:  # central directory headers: flags at +8, name at +46
        if out[at + 46:at + 46 + len(encoded)] == encoded:
            out[at + 8] |= 0x01
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_encrypted_member_refused(tmp_path, temp_root, csv_bytes):
    plain = make_zip(tmp_path / "plain.zip", {"secret.csv": csv_bytes[0],
                                              "open.csv": csv_bytes[1]})
    archive = tmp_path / "locked.zip"
    archive.write_bytes(_set_encrypted_flag(plain.read_bytes(), "secret.csv"))
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("secret.csv").flag_bits & 0x1
    with expand_inputs([archive], temp_dir=temp_root) as inputs:
        assert [f.member for f in inputs.files] == ["open.csv"]
        (finding,) = inputs.findings
        assert finding.code == "encrypted-archive-member"
        assert "'secret.csv'" in finding.message and str(archive) in finding.message


def test_corrupt_and_truncated_archives(tmp_path, temp_root, csv_bytes):
    good = make_zip(tmp_path / "good.zip", {"a.csv": csv_bytes[0], "b.csv": csv_bytes[1]})
    data = good.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04" + os.urandom(5000))
    for path in (truncated, garbage):
        result = extract_zip(path, temp_dir=temp_root)
        assert result.refused and codes(result.findings) == ["corrupt-archive"]
        assert result.findings[0].file == str(path)
    # a damaged member (stored, one data byte changed: bad CRC) is refused, the other kept
    stored = make_zip(tmp_path / "stored.zip", {"a.csv": csv_bytes[0], "b.csv": csv_bytes[1]},
                      zipfile.ZIP_STORED)
    damaged = bytearray(stored.read_bytes())
    damaged[200] ^= 0xFF
    (tmp_path / "damaged.zip").write_bytes(damaged)
    result = extract_zip(tmp_path / "damaged.zip", temp_dir=temp_root)
    assert [f.member for f in result.files] == ["b.csv"]
    assert codes(result.findings) == ["corrupt-archive"] and "CRC" in result.findings[0].message
    shutil.rmtree(result.folder)  # extract_zip's caller removes the folder
    # through expand_inputs: findings, no crash, the other inputs still there
    csv = tmp_path / "plain.csv"
    csv.write_bytes(csv_bytes[0])
    with expand_inputs([truncated, garbage, csv], temp_dir=temp_root) as inputs:
        assert [f.path for f in inputs.files] == [csv]
        assert codes(inputs.findings) == ["corrupt-archive"] * 2
    assert list(temp_root.iterdir()) == []


def test_nested_zip_reported_not_expanded(tmp_path, temp_root, csv_bytes):
    inner = make_zip(tmp_path / "inner.zip", {"deep.csv": csv_bytes[0]}).read_bytes()
    archive = make_zip(tmp_path / "outer.zip", {"sub/inner.zip": inner, "top.csv": csv_bytes[1]})
    with expand_inputs([archive], temp_dir=temp_root) as inputs:
        assert [f.member for f in inputs.files] == ["top.csv"]
        (finding,) = inputs.findings
        assert finding.code == "nested-archive" and finding.severity is Severity.WARNING
        assert "'sub/inner.zip'" in finding.message
        assert [p.name for p in temp_root.rglob("*") if p.is_file()] == ["top.csv"]


def test_only_stored_and_deflated_members(tmp_path, temp_root, csv_bytes):
    archive = make_zip(tmp_path / "bz.zip", {"a.csv": csv_bytes[0]}, zipfile.ZIP_BZIP2)
    result = extract_zip(archive, temp_dir=temp_root)
    assert result.files == [] and codes(result.findings) == ["unsafe-archive-member"]
    assert "compression method 12" in result.findings[0].message


def test_duplicate_member_keeps_the_first(tmp_path, temp_root, csv_bytes):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("a.csv", csv_bytes[0])
        zf.writestr("a.csv", csv_bytes[1])
    result = extract_zip(archive, temp_dir=temp_root)
    assert [f.path.read_bytes() for f in result.files] == [csv_bytes[0]]
    assert codes(result.findings) == ["unsafe-archive-member"]


def test_what_is_an_archive(tmp_path, csv_bytes):
    by_name = tmp_path / "data.csv"  # content decides, not the name
    make_zip(by_name, {"a.csv": csv_bytes[0]})
    assert is_archive(by_name)
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(csv_bytes[0])
    assert not is_archive(not_zip) and not is_archive(tmp_path / "missing.zip")
    workbook = make_zip(tmp_path / "book.xlsx", {"[Content_Types].xml": b"<Types/>",
                                                  "xl/workbook.xml": b"<workbook/>"})
    assert not is_archive(workbook)
    inputs = expand_inputs([workbook, not_zip])  # named files: each gets a row, as before
    assert [(f.path, f.explicit) for f in inputs.files] == [(workbook, True), (not_zip, True)]
    assert inputs.temp_dirs == []


def test_archives_in_folders_and_globs_are_expanded_once(tmp_path, temp_root, csv_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    archive = make_zip(folder / "batch.zip", {"a.csv": csv_bytes[0], "readme.txt": b"notes"})
    (folder / "loose.csv").write_bytes(csv_bytes[1])
    with expand_inputs([folder, str(folder / "*.zip"), archive], temp_dir=temp_root) as inputs:
        assert [f.label for f in inputs.files] == [f"{archive}/a.csv", str(folder / "loose.csv")]
        (readme,) = inputs.skipped
        assert readme.label == f"{archive}/readme.txt" and readme.state == "skipped"
        assert readme.finding.code == "not-a-cpet-export" and "'notes'" in readme.finding.message
        assert [i.label for i in inputs.items] == [f"{archive}/a.csv", f"{archive}/readme.txt",
                                                    str(folder / "loose.csv")]
        assert len(inputs.temp_dirs) == 1


def test_temporary_folders_removed(tmp_path, temp_root, csv_bytes):
    archive = make_zip(tmp_path / "t.zip", {"a.csv": csv_bytes[0]})
    inputs = expand_inputs([archive, archive], temp_dir=temp_root)
    (folder,) = inputs.temp_dirs
    assert folder.is_dir() and inputs.files[0].path.is_file()
    inputs.cleanup()
    inputs.cleanup()  # idempotent
    assert not folder.exists() and list(temp_root.iterdir()) == []
    # forgotten: garbage collection removes them too
    inputs = expand_inputs([archive], temp_dir=temp_root)
    (folder,) = inputs.temp_dirs
    del inputs
    gc.collect()
    assert not folder.exists()


def test_cli_analyses_the_members_of_a_zip(tmp_path, csv_bytes, monkeypatch):
    system_temp = tmp_path / "systemp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    inner = make_zip(tmp_path / "inner.zip", {"x.csv": csv_bytes[0]}).read_bytes()
    archive = make_zip(tmp_path / "batch.zip", {
        "lab/a.csv": csv_bytes[0], "lab/b.csv": csv_bytes[1], "__MACOSX/lab/._a.csv": b"\x00",
        "../evil.csv": csv_bytes[0], "nested.zip": inner})
    out = tmp_path / "r.csv"
    assert main(["analyze", str(archive), "-o", str(out), "-q"]) == 0
    table = pd.read_csv(out).set_index("file")
    # every member is accounted for: the two tests analysed, the unsafe and the nested
    # member refused with their finding (the __MACOSX clutter is not an input)
    assert sorted(table.index) == sorted(f"{archive}/{m}" for m in (
        "lab/a.csv", "lab/b.csv", "../evil.csv", "nested.zip"))
    analysed = table.loc[[f"{archive}/lab/a.csv", f"{archive}/lab/b.csv"]]
    assert (analysed["status"] == "ok").all() and analysed["vt1_time_s"].notna().all()
    assert table.loc[f"{archive}/../evil.csv", "status"] == "error"
    assert "unsafe-archive-member" in table.loc[f"{archive}/../evil.csv", "findings"]
    assert "nested-archive" in table.loc[f"{archive}/nested.zip", "findings"]
    assert list(system_temp.iterdir()) == []  # extracted copies gone once the batch is done


def test_cli_names_members_by_archive_and_reports_refused_members(tmp_path, capsys):
    member = tmp_path / "member.csv"
    write_canonical_csv(ramp_test(), member)
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(member, "lab/t1.csv")
        zf.writestr("../escape.csv", member.read_text())
    out = tmp_path / "r.csv"
    assert main(["analyze", str(archive), "-o", str(out), "-q"]) == 0
    table = pd.read_csv(out)
    assert table["file"].tolist() == [f"{archive}/../escape.csv", f"{archive}/lab/t1.csv"]
    assert table["status"].tolist() == ["error", "ok"]
    err = capsys.readouterr().err
    assert f"error: {archive}/../escape.csv: unsafe-archive-member: archive" in err
    assert "1 ok, 0 warning, 1 error" in err
