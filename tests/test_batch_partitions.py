"""How the driver cuts a batch into dask tasks (no cluster needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cpet_nb.batch.driver import MAX_AUTO_PARTITION, TAIL_SPLIT, Driver
from cpet_nb.batch.store import FileEntry
from cpet_nb.settings import Settings


def plan(n_files: int, threads: int, **settings) -> list[list[int]]:
    """The partitions (file indices) of a batch of ``n_files`` on ``threads`` threads."""
    entries = [FileEntry(i, f"f{i}.csv", f"/data/f{i}.csv", f"{i:064x}", 1000)
               for i in range(n_files)]
    driver = Driver(SimpleNamespace(job_id="job"), None, Settings(**settings))
    return [[e.idx for e in p.entries] for p in driver._partitions(entries, threads)]


@pytest.mark.parametrize(("n_files", "threads"), [(1000, 2), (333, 2), (90, 4), (7, 2)])
def test_every_file_once_in_order(n_files, threads):
    assert [i for part in plan(n_files, threads) for i in part] == list(range(n_files))


def test_first_files_alone_then_full_partitions_then_a_finer_tail():
    """Each thread's first task is one file (a first result soon); the last files, one full
    partition per thread, go in smaller ones, so that no worker idles for a whole partition
    while another finishes its last."""
    sizes = [len(part) for part in plan(1000, 2)]
    small = -(-MAX_AUTO_PARTITION // TAIL_SPLIT)
    full = sizes.index(small)
    assert sizes[:2] == [1, 1]
    assert set(sizes[2:full]) == {MAX_AUTO_PARTITION}
    assert max(sizes[full:]) == small
    assert 2 * MAX_AUTO_PARTITION <= sum(sizes[full:]) < 3 * MAX_AUTO_PARTITION


def test_a_size_chosen_by_the_user_is_kept_to_the_end():
    assert [len(part) for part in plan(10, 2, partition_size=4)] == [4, 4, 2]
