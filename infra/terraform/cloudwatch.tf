# destination = "cloudwatch": the log group the load function writes events to, one stream per
# function instance (aztrail/YYYY/MM/DD/<instance>), encrypted with the module's key. The load
# role may create streams and put events in this group only (iam.tf).
resource "aws_cloudwatch_log_group" "events" {
  count             = local.cloudwatch ? 1 : 0
  name              = "/${var.name}/azure-events"
  retention_in_days = var.events_log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}
