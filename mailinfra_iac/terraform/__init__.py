"""Running Terraform on a rendered root module (``mailinfra plan``), behind a small adapter."""

from .adapter import (
    MINIMUM,
    PlanResult,
    ProviderUnavailable,
    Result,
    Terraform,
    TerraformBinary,
    TerraformError,
    TerraformFailed,
    TerraformNotFound,
    TerraformTooOld,
    binary_version,
    find_terraform,
)

__all__ = [
    'MINIMUM',
    'PlanResult',
    'ProviderUnavailable',
    'Result',
    'Terraform',
    'TerraformBinary',
    'TerraformError',
    'TerraformFailed',
    'TerraformNotFound',
    'TerraformTooOld',
    'binary_version',
    'find_terraform',
]
