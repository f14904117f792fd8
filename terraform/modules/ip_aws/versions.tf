terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the version tests/data/tf_schemas/aws.json was generated from.
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.25.0"
    }
  }
}
