terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the version tests/data/tf_schemas/ovh.json was generated from.
    ovh = {
      source  = "ovh/ovh"
      version = "~> 2.19.0"
    }
  }
}
