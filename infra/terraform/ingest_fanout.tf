# Many ingest workers for one container (a big tenant's central storage account): with
# ingest_workers > 0, each schedule tick's invocation finds the roots and sends them, in
# ingest_work_shards shards, to the ingest-work queue; the queue triggers the same function, one
# shard per invocation, at most ingest_workers at once. The day shards' claims keep two workers
# from staging the same byte; a shard that keeps failing goes to the dead-letter queue, which
# alarms.

locals {
  fan_out = var.ingest_workers > 0
}

resource "aws_sqs_queue" "ingest_work_dlq" {
  count                             = local.fan_out ? 1 : 0
  name                              = "${var.name}-ingest-work-dlq"
  message_retention_seconds         = 1209600 # 14 days, the most SQS keeps
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

resource "aws_sqs_queue" "ingest_work" {
  count = local.fan_out ? 1 : 0
  name  = "${var.name}-ingest-work"
  # A worker's pass ends before the function's timeout; the message then reappears for another.
  visibility_timeout_seconds        = 6 * var.ingest_timeout_seconds
  message_retention_seconds         = 3600 # an hour-old shard is covered by the next tick's
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  redrive_policy = jsonencode({
    deadLetterTargetArn = one(aws_sqs_queue.ingest_work_dlq[*].arn)
    maxReceiveCount     = var.max_receive_count
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "ingest_work_dlq" {
  count     = local.fan_out ? 1 : 0
  queue_url = one(aws_sqs_queue.ingest_work_dlq[*].id)
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = aws_sqs_queue.ingest_work[*].arn
  })
}

resource "aws_lambda_event_source_mapping" "ingest_work" {
  count                   = local.fan_out ? 1 : 0
  event_source_arn        = one(aws_sqs_queue.ingest_work[*].arn)
  function_name           = aws_lambda_function.ingest.arn
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = max(2, var.ingest_workers)
  }
}
