"""The collector paused around parsing and rendering: what survives is moved to the oldest generation, nothing leaks."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
import weakref
from collections.abc import Iterator

import pytest

from mailinfra_iac import parse_spec, render_files
from mailinfra_iac.batch import gc_paused
from mailinfra_iac.render import OutputFile

from ..conftest import AS_OF, BASE, TEST_DKIM


class Node:
    """A tracked object that can hold a cycle and be watched with a weak reference."""

    def __init__(self) -> None:
        self.other: object = None


def _young(obj: object) -> bool:
    return any(item is obj for generation in (0, 1) for item in gc.get_objects(generation))


def _oldest(obj: object) -> bool:
    return any(item is obj for item in gc.get_objects(2))


def _digest(files: dict[str, OutputFile]) -> str:
    total = hashlib.sha256()
    for path in sorted(files):
        total.update(path.encode() + b'\0' + files[path].content)
    return total.hexdigest()


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    """The collector on, with no automatic collection meanwhile: an object's generation then changes only by the
    code under test (a young collection started by the test's own allocations would move it on)."""
    assert gc.get_freeze_count() == 0
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    gc.enable()
    gc.set_threshold(10**9, 10, 10)
    yield
    gc.set_threshold(*threshold)
    if not enabled:
        gc.disable()


def test_what_survives_moves_to_the_oldest_generation() -> None:
    with gc_paused(promote=True):
        kept = Node()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert _oldest(kept) and not _young(kept)


def test_without_promote_what_survives_stays_young() -> None:
    with gc_paused():
        kept = Node()
    assert gc.isenabled()
    assert _young(kept) and not _oldest(kept)


def test_parse_and_render_leave_their_results_in_the_oldest_generation() -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    assert _oldest(spec.deployment) and _oldest(spec.facts)
    files = render_files(spec, dkim=TEST_DKIM)
    assert _oldest(files) and not _young(next(iter(files.values())))


def test_a_cycle_made_inside_is_still_collected() -> None:
    with gc_paused(promote=True):
        node = Node()
        node.other = node
    watch = weakref.ref(node)
    del node
    gc.collect(0)  # a young collection no longer sees it ...
    assert watch() is not None
    gc.collect()  # ... a full one frees it
    assert watch() is None


def test_the_callers_frozen_objects_stay_frozen() -> None:
    frozen = Node()
    gc.freeze()
    try:
        count = gc.get_freeze_count()
        assert count > 0
        with gc_paused(promote=True):
            kept = Node()
        assert gc.get_freeze_count() == count
        assert not _young(frozen) and not _oldest(frozen)
        assert _young(kept)  # not moved: moving would have unfrozen the caller's objects
    finally:
        gc.unfreeze()


def test_nested_and_caller_paused_blocks_leave_the_collector_alone() -> None:
    with gc_paused(promote=True):
        with gc_paused(promote=True):
            inner = Node()
        assert not gc.isenabled() and _young(inner)
    assert gc.isenabled() and _oldest(inner)
    gc.disable()
    try:
        with gc_paused(promote=True):
            kept = Node()
        assert not gc.isenabled() and _young(kept)
    finally:
        gc.enable()


def test_threads_render_alike_and_leave_the_collector_enabled() -> None:
    expected = _digest(render_files(parse_spec(BASE, 'spec.yml', as_of=AS_OF), dkim=TEST_DKIM))
    digests: list[str] = []

    def work() -> None:
        for _ in range(3):
            digests.append(_digest(render_files(parse_spec(BASE, 'spec.yml', as_of=AS_OF), dkim=TEST_DKIM)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert digests == [expected] * 9
    assert gc.isenabled() and gc.get_freeze_count() == 0


def _rss_kib() -> int:
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024


def test_twenty_renders_in_one_process_keep_nothing() -> None:
    objects: list[int] = []
    rss: list[int] = []
    for _ in range(20):
        spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
        files = render_files(spec, dkim=TEST_DKIM)
        del spec, files
        gc.collect()
        objects.append(len(gc.get_objects()))
        rss.append(_rss_kib())
    assert gc.get_freeze_count() == 0
    # after the first renders (caches of compiled templates and the like), every render leaves the heap as it was
    assert objects[19] - objects[4] <= 0, objects
    assert rss[19] - rss[4] < 4096, rss
