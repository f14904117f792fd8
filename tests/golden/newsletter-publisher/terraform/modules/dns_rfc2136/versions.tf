terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the version tests/data/tf_schemas/dns.json was generated from.
    dns = {
      source  = "hashicorp/dns"
      version = "~> 3.4.3"
    }
  }
}
