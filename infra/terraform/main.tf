# aztrail: Azure Activity Log and Entra ID audit logs into AWS CloudTrail Lake.
#
# The resources are split by concern:
#   kms.tf         the encryption key (created unless one is given)
#   storage.tf     the S3 staging bucket and its notification to the work queue
#   queues.tf      the work queue, its dead-letter queue and the failure queue
#   cloudtrail.tf  the event data store (unless one is given), the channel and its policy
#   functions.tf   the ingest and load Lambda functions, their logs, schedule and event source
#   iam.tf         one least-privilege role per function, and the scheduler's
#   alarms.tf      dead-letter and failure queue depth, function errors

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  bucket_name    = "${var.name}-staging-${local.account}-${local.region}"
  staging_prefix = "staged/"
  kms_key_arn    = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn

  event_data_store_arn = var.event_data_store_arn != null ? var.event_data_store_arn : aws_cloudtrail_event_data_store.this[0].arn

  # The account's PutAuditEvents quota, shared by the load instances that may run at once.
  load_calls_per_second = floor(var.account_calls_per_second * 100 / var.load_max_concurrency) / 100

  ingest_function = "${var.name}-ingest"
  load_function   = "${var.name}-load"

  tags = merge({ "app" = "aztrail" }, var.tags)
}
