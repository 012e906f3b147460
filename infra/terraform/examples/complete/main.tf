# A complete deployment: a new event data store, a new KMS key, three Azure containers, alarms
# to an SNS topic. Build the functions' zip first: scripts/build-lambda (from the repository root).

terraform {
  required_version = ">= 1.5.0, < 2.0.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70.0, < 7.0.0"
    }
    awscc = {
      source  = "hashicorp/awscc"
      version = ">= 1.10.0, < 2.0.0"
    }
  }
}

variable "region" {
  description = "The AWS region to deploy in."
  type        = string
  default     = "us-east-1"
}

variable "destination" {
  description = "cloudtrail (CloudTrail Lake) or cloudwatch (CloudWatch Logs, for accounts CloudTrail Lake no longer admits)."
  type        = string
  default     = "cloudtrail"
}

variable "azure_secret_arn" {
  description = "The Secrets Manager secret with the Azure credentials."
  type        = string
}

provider "aws" {
  region = var.region
}

provider "awscc" {
  region = var.region
}

resource "aws_sns_topic" "alarms" {
  name              = "aztrail-alarms"
  kms_master_key_id = "alias/aws/sns"
}

module "aztrail" {
  source = "../.."

  name                 = "aztrail"
  destination          = var.destination
  retention_days       = 366
  azure_containers     = ["insights-activity-logs", "insights-logs-auditlogs", "insights-logs-signinlogs"]
  azure_secret_arn     = var.azure_secret_arn
  schedule_expression  = "rate(5 minutes)"
  lookback             = "48h"
  load_max_concurrency = 4
  lambda_zip           = "${path.root}/../../../../target/lambda/aztrail/bootstrap.zip"
  alarm_actions        = [aws_sns_topic.alarms.arn]

  tags = {
    owner = "security"
  }
}

output "channel_arn" {
  description = "The CloudTrail Lake channel."
  value       = module.aztrail.channel_arn
}

output "event_data_store_id" {
  description = "Query it with: SELECT ... FROM <this id>."
  value       = module.aztrail.event_data_store_id
}

output "events_log_group" {
  description = "With destination = cloudwatch: query it in Logs Insights."
  value       = module.aztrail.events_log_group
}

output "dashboard_name" {
  description = "The pipeline's CloudWatch dashboard."
  value       = module.aztrail.dashboard_name
}
