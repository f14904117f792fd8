"""mailinfra_iac.paths: $MAILINFRA_PROJECT, then the checkout, then the copy bundled in the wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra_iac import __version__, paths
from mailinfra_iac.cli.main import main
from mailinfra_iac.problems import MailinfraError

from ..conftest import ROOT


def tree(root: Path) -> Path:
    (root / 'roles').mkdir(parents=True)
    (root / 'terraform' / 'modules').mkdir(parents=True)
    return root


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package as if installed in site-packages: no checkout around it, _data/ inside it."""
    package = tmp_path / 'site-packages' / 'mailinfra_iac'
    package.mkdir(parents=True)
    monkeypatch.setattr(paths, 'PACKAGE_DIR', package)
    monkeypatch.setattr(paths, 'BUNDLED_DIR', package / '_data')
    monkeypatch.delenv(paths.PROJECT_ENV, raising=False)
    return package


def test_checkout_is_found_beside_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.PROJECT_ENV, raising=False)
    root = paths.data_root()
    assert (root.path, root.origin) == (ROOT, 'checkout')
    assert root.roles == ROOT / 'roles'
    assert root.modules == ROOT / 'terraform' / 'modules'
    assert root.describe() == f'roles and Terraform modules: checkout at {ROOT}'


def test_bundled_copy_when_there_is_no_checkout(installed: Path) -> None:
    tree(installed / '_data')
    root = paths.data_root()
    assert (root.path, root.origin) == (installed / '_data', 'bundled')
    assert root.describe() == f'roles and Terraform modules: bundled in the wheel ({installed / "_data"})'
    assert paths.project_root() == installed / '_data'


def test_environment_wins_over_both(installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree(installed / '_data')
    monkeypatch.setenv(paths.PROJECT_ENV, str(tree(tmp_path / 'project')))
    root = paths.data_root()
    assert (root.path, root.origin) == (tmp_path / 'project', 'MAILINFRA_PROJECT')
    assert root.describe() == f'roles and Terraform modules: {tmp_path / "project"} (from $MAILINFRA_PROJECT)'


def test_wrong_environment_is_an_error_not_a_fallback(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(installed / '_data')
    (tmp_path / 'half' / 'roles').mkdir(parents=True)
    monkeypatch.setenv(paths.PROJECT_ENV, str(tmp_path / 'half'))
    with pytest.raises(MailinfraError, match=r'^MAILINFRA_PROJECT=.*/half has no roles/ and terraform/modules/$'):
        paths.data_root()


def test_nothing_found(installed: Path) -> None:
    (installed / '_data' / 'roles').mkdir(parents=True)  # modules missing: incomplete
    with pytest.raises(MailinfraError) as raised:
        paths.data_root()
    assert str(raised.value) == (
        f'no roles/ and terraform/modules/ beside the package ({installed.parent}) nor bundled in it '
        f'({installed / "_data"}): install mailinfra-iac from a wheel, run it from a checkout, or set '
        'MAILINFRA_PROJECT to one'
    )


def test_version_option(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.PROJECT_ENV, raising=False)
    with pytest.raises(SystemExit) as raised:
        main(['--version'])
    assert raised.value.code == 0
    assert capsys.readouterr().out == (
        f'mailinfra-iac {__version__} (mailinfra-agent {__version__})\n'
        f'roles and Terraform modules: checkout at {ROOT}\n'
    )


def test_version_option_without_roles(capsys: pytest.CaptureFixture[str], installed: Path) -> None:
    with pytest.raises(SystemExit):
        main(['--version'])
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith('roles and Terraform modules: not found (no roles/ and terraform/modules/ beside')
