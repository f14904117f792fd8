terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the version tests/data/tf_schemas/vultr.json was generated from.
    vultr = {
      source  = "vultr/vultr"
      version = "~> 2.32.0"
    }
  }
}
