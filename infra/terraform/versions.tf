terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70.0, < 7.0.0"
    }
    # The AWS provider has no CloudTrail Lake channel resource; the Cloud Control provider does.
    awscc = {
      source  = "hashicorp/awscc"
      version = ">= 1.10.0, < 2.0.0"
    }
  }
}
