"""`terraform fmt` must leave every file under terraform/ unchanged."""

from tf_helpers import REPO, find_terraform, run_terraform


def test_terraform_fmt_check_is_clean():
    terraform = find_terraform()
    proc = run_terraform(terraform, ['fmt', '-check', '-recursive', '-diff', '-no-color', 'terraform/'], REPO)
    assert proc.returncode == 0, f'terraform fmt found unformatted files:\n{proc.stdout}\n{proc.stderr}'
