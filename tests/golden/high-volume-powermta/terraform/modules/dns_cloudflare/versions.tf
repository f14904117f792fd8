terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the version tests/data/tf_schemas/cloudflare.json was generated from.
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.14.0"
    }
  }
}
