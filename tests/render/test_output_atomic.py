"""Atomic output: renders killed half-way leave nothing behind for long, and the output path never goes missing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mailinfra_iac.render import OutputFile
from mailinfra_iac.render.output import MARKER, clean_stale, exchange, write_tree

from ..conftest import ROOT

FILES = 400

CHILD = textwrap.dedent(
    """
    import sys, time
    from mailinfra_iac.render import OutputFile
    from mailinfra_iac.render.output import write_tree

    out, stop_at, version = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    FILES = int(sys.argv[4])
    files = {f'd{i % 7}/f{i}.txt': OutputFile(f'd{i % 7}/f{i}.txt', version.encode() * 2048) for i in range(FILES)}

    def progress(done, total):
        if done == stop_at:
            print('stopped', flush=True)
            time.sleep(600)

    write_tree(files, out, progress=progress)
    print('done', flush=True)
    """
)


def _debris(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != 'out')


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob('*') if p.is_file()}


def _files(version: str) -> dict[str, OutputFile]:
    return {f'd{i % 7}/f{i}.txt': OutputFile(f'd{i % 7}/f{i}.txt', version.encode() * 2048) for i in range(FILES)}


@pytest.mark.parametrize('stop_at', [1, 2, FILES // 2, FILES])
def test_a_killed_render_leaves_debris_that_the_next_render_removes(tmp_path: Path, stop_at: int) -> None:
    out = tmp_path / 'out'
    write_tree(_files('a'), out)
    old = _tree(out)
    child = subprocess.Popen(
        [sys.executable, '-c', CHILD, str(out), str(stop_at), 'b', str(FILES)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == 'stopped\n'
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    # the killed render left its staging directory, and the old tree is intact
    [staging] = _debris(tmp_path)
    assert staging.startswith('.out.new-')
    assert _tree(out) == old
    # nobody holds its lock any more: it is stale
    assert clean_stale(out) == [tmp_path / staging]
    write_tree(_files('c'), out)
    assert _debris(tmp_path) == []
    assert _tree(out) == {path: file.content for path, file in _files('c').items()} | {MARKER: old[MARKER]}


def test_killed_at_random_moments_never_leaves_a_broken_tree(tmp_path: Path) -> None:
    out = tmp_path / 'out'
    write_tree(_files('a'), out)
    trees = [_tree(out)]
    for delay in (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5):
        version = f'v{delay}'
        child = subprocess.Popen([sys.executable, '-c', CHILD, str(out), '0', version, str(FILES)], cwd=ROOT)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        # the tree is complete: the old one or the new one, never a mix, never missing
        tree = _tree(out)
        assert tree in trees or tree == {p: f.content for p, f in _files(version).items()} | {MARKER: trees[0][MARKER]}
        trees.append(tree)
    write_tree(_files('z'), out)
    assert _debris(tmp_path) == []


def test_a_live_staging_directory_is_not_removed(tmp_path: Path) -> None:
    out = tmp_path / 'out'
    write_tree(_files('a'), out)
    child = subprocess.Popen(
        [sys.executable, '-c', CHILD, str(out), '3', 'b', str(FILES)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == 'stopped\n'
        [staging] = _debris(tmp_path)
        assert clean_stale(out) == []
        write_tree(_files('c'), out)  # a concurrent render
        assert _debris(tmp_path) == [staging]
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_only_our_directories_are_cleaned(tmp_path: Path) -> None:
    out = tmp_path / 'out'
    write_tree(_files('a'), out)
    keep = [
        tmp_path / '.out.new-notours',  # wrong suffix form
        tmp_path / '.other.new-abcdefgh',  # another output's
        tmp_path / '.out.new-nomarker',  # no marker
    ]
    for directory in keep:
        directory.mkdir()
        (directory / 'data').write_text('x')
    (keep[0] / MARKER).write_text('')
    (keep[1] / MARKER).write_text('')
    stale = tmp_path / '.out.old-abcd_123'
    (stale / 'tree').mkdir(parents=True)
    (stale / MARKER).write_text('')
    assert clean_stale(out) == [stale]
    assert sorted(p.name for p in keep if p.exists()) == sorted(p.name for p in keep)


POLLER = textwrap.dedent(
    """
    import os, sys
    out = sys.argv[1]
    stop = out + '.stop'
    polls = missing = 0
    while not os.path.exists(stop):
        polls += 1
        try:
            os.stat(out + '/.mailinfra-render')
        except FileNotFoundError:
            missing += 1
    print(polls, missing)
    """
)


def test_the_output_path_never_goes_missing(tmp_path: Path) -> None:
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    if not exchange(tmp_path / 'a', tmp_path / 'b'):
        pytest.skip('renameat2(RENAME_EXCHANGE) is not supported here: the fallback has a gap')
    (tmp_path / 'a').rmdir()
    (tmp_path / 'b').rmdir()
    out = tmp_path / 'out'
    write_tree({'a.txt': OutputFile('a.txt', b'0')}, out)
    poller = subprocess.Popen([sys.executable, '-c', POLLER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # let it start polling
        for round_ in range(300):
            write_tree({'a.txt': OutputFile('a.txt', str(round_).encode())}, out)
    finally:
        Path(f'{out}.stop').touch()
        stdout, _ = poller.communicate(timeout=30)
    polls, missing = map(int, stdout.split())
    assert polls > 1000
    assert missing == 0
    assert _debris(tmp_path) == ['out.stop']


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    (tmp_path / 'a' / 'x').write_text('a')
    if not exchange(tmp_path / 'a', tmp_path / 'b'):
        pytest.skip('renameat2(RENAME_EXCHANGE) is not supported here')
    assert (tmp_path / 'b' / 'x').read_text() == 'a'
    assert not (tmp_path / 'a' / 'x').exists()
    with pytest.raises(FileNotFoundError):
        exchange(tmp_path / 'a', tmp_path / 'missing')


def test_without_exchange_the_renames_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[write_tree.__module__], '_renameat2', None)
    out = tmp_path / 'out'
    write_tree(_files('a'), out)
    write_tree(_files('b'), out)
    assert (out / 'd0' / 'f0.txt').read_bytes() == b'b' * 2048
    assert _debris(tmp_path) == []


def test_an_output_path_that_is_a_link_is_replaced_not_followed(tmp_path: Path) -> None:
    real = tmp_path / 'real'
    write_tree(_files('a'), real)
    (tmp_path / 'out').symlink_to(real)
    write_tree(_files('b'), tmp_path / 'out')
    assert not (tmp_path / 'out').is_symlink()
    assert (tmp_path / 'out' / 'd0' / 'f0.txt').read_bytes() == b'b' * 2048
    assert (real / 'd0' / 'f0.txt').read_bytes() == b'a' * 2048  # the linked directory is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out', 'real']
