terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the version tests/data/tf_schemas/linode.json was generated from.
    linode = {
      source  = "linode/linode"
      version = "~> 3.13.0"
    }
  }
}
