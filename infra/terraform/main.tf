# aztrail: Azure Activity Log and Entra ID audit logs into AWS CloudTrail Lake.
#
# The resources are split by concern:
#   kms.tf         the encryption key (created unless one is given)
#   storage.tf     the S3 staging bucket and its notification to the work queue
#   queues.tf      the work queue, its dead-letter queue and the failure queue
#   cloudtrail.tf  destination = "cloudtrail": the event data store (unless one is given), the
#                  channel and its policy
#   cloudwatch.tf  destination = "cloudwatch": the events log group
#   securitylake.tf  destination = "securitylake": a custom source per OCSF class, and the role
#                  of their Glue crawlers
#   dashboard.tf   one CloudWatch dashboard of both functions' metrics and the alarms
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

  # One destination: CloudTrail Lake's resources exist only for "cloudtrail", the events log
  # group only for "cloudwatch".
  cloudtrail   = var.destination == "cloudtrail"
  cloudwatch   = var.destination == "cloudwatch"
  securitylake = var.destination == "securitylake"

  event_data_store_arn = !local.cloudtrail ? null : (var.event_data_store_arn != null ? var.event_data_store_arn : aws_cloudtrail_event_data_store.this[0].arn)
  channel_arn          = local.cloudtrail ? awscc_cloudtrail_channel.this[0].channel_arn : null
  events_log_group     = local.cloudwatch ? aws_cloudwatch_log_group.events[0].name : null

  # The account's quota of calls to the destination, shared by the load instances that may run
  # at once.
  account_calls_per_second = coalesce(var.account_calls_per_second, local.cloudtrail ? 100 : 800)
  load_calls_per_second    = floor(local.account_calls_per_second * 100 / var.load_max_concurrency) / 100

  # What the load function sends to, in its environment.
  destination_env = local.cloudtrail ? tomap({
    AZTRAIL_DESTINATION = "cloudtrail"
    AZTRAIL_CHANNEL_ARN = local.channel_arn
    }) : local.cloudwatch ? tomap({
    AZTRAIL_DESTINATION = "cloudwatch"
    AZTRAIL_LOG_GROUP   = local.events_log_group
    AZTRAIL_ACCOUNT_ID  = local.account
    }) : tomap({
    AZTRAIL_DESTINATION            = "securitylake"
    AZTRAIL_SECURITYLAKE_BUCKET    = local.securitylake_bucket
    AZTRAIL_SECURITYLAKE_LOCATIONS = join(",", [for class, location in local.securitylake_locations : "${class}=${location}"])
    AZTRAIL_SECURITYLAKE_REGION    = local.region
    AZTRAIL_ACCOUNT_ID             = local.account
    AZTRAIL_BATCH_MAX_SECONDS      = tostring(var.securitylake_batch_window_seconds)
  })

  ingest_function = "${var.name}-ingest"
  load_function   = "${var.name}-load"

  tags = merge({ "app" = "aztrail" }, var.tags)
}
