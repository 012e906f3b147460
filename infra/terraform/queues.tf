resource "aws_sqs_queue" "dead_letter" {
  name                              = "${var.name}-work-dlq"
  message_retention_seconds         = 1209600 # 14 days, the most SQS keeps
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

# S3 notifications of staged objects. A message is deleted only when every record of its objects
# was accepted or written to the failure queue; after max_receive_count deliveries it moves to the
# dead-letter queue.
resource "aws_sqs_queue" "work" {
  name                              = "${var.name}-work"
  visibility_timeout_seconds        = 6 * var.load_timeout_seconds
  message_retention_seconds         = 345600 # 4 days
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.work.arn]
  })
}

# Only this bucket, in this account, may send to the work queue.
data "aws_iam_policy_document" "work_queue" {
  statement {
    sid       = "StagingBucketNotifies"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.work.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.staging.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_sqs_queue_policy" "work" {
  queue_url = aws_sqs_queue.work.id
  policy    = data.aws_iam_policy_document.work_queue.json
}

# One message per event that could not be loaded, with its reason and where its record is;
# `aztrail redrive` sends them again.
resource "aws_sqs_queue" "failures" {
  name                              = "${var.name}-failures"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}
