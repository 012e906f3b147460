data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# --- ingest: read the Azure secret, write staged objects and its checkpoints, log.

resource "aws_iam_role" "ingest" {
  name               = "${var.name}-ingest"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "ReadAzureCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.azure_secret_arn]
  }

  statement {
    sid       = "StageObjects"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.staging.arn}/${local.staging_prefix}*"]
  }

  # Day shards of days out of the window are deleted when the roots are walked again.
  statement {
    sid       = "Checkpoints"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.staging.arn}/_aztrail/ingest/*"]
  }

  # The fan-out: the tick sends work shards, the event source mapping takes them.
  dynamic "statement" {
    for_each = local.fan_out ? [1] : []
    content {
      sid       = "IngestWork"
      actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = aws_sqs_queue.ingest_work[*].arn
    }
  }

  # Without ListBucket a missing checkpoint reads as AccessDenied instead of NoSuchKey.
  statement {
    sid       = "FindCheckpoints"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.staging.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["_aztrail/ingest/*"]
    }
  }

  statement {
    sid       = "EncryptStaged"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = compact([local.kms_key_arn, var.azure_secret_kms_key_arn])
  }

  statement {
    sid       = "FailedInvocations"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ingest.arn}:*"]
  }

  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions for these actions
  }
}

resource "aws_iam_role_policy" "ingest" {
  name   = "ingest"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}

# --- load: consume the work queue, read staged objects, keep checkpoints, put events, report.

resource "aws_iam_role" "load" {
  name               = "${var.name}-load"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "load" {
  statement {
    sid = "ConsumeWork"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.work.arn]
  }

  statement {
    sid       = "ReportFailures"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failures.arn]
  }

  statement {
    sid       = "ReadStaged"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.staging.arn}/${local.staging_prefix}*"]
  }

  statement {
    sid       = "Checkpoints"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.staging.arn}/_aztrail/load/*"]
  }

  statement {
    sid       = "FindCheckpoints"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.staging.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["_aztrail/load/*"]
    }
  }

  statement {
    sid       = "Decrypt"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_key_arn]
  }

  # The destination, and nothing else: the channel, or the events log group's streams.
  dynamic "statement" {
    for_each = local.cloudtrail ? [local.channel_arn] : []
    content {
      sid       = "PutEvents"
      actions   = ["cloudtrail-data:PutAuditEvents"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.cloudwatch ? [aws_cloudwatch_log_group.events[0].arn] : []
    content {
      sid       = "PutLogEvents"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      resources = ["${statement.value}:*"]
    }
  }

  # Security Lake: objects under the custom sources' locations only, and HeadBucket on the bucket.
  dynamic "statement" {
    for_each = local.securitylake ? [local.securitylake_object_arns] : []
    content {
      sid       = "PutSourceFiles"
      actions   = ["s3:PutObject"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = local.securitylake ? ["arn:${local.partition}:s3:::${local.securitylake_bucket}"] : []
    content {
      sid       = "FindLakeBucket"
      actions   = ["s3:ListBucket"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.securitylake && var.securitylake_kms_key_arn != null ? [var.securitylake_kms_key_arn] : []
    content {
      sid       = "EncryptSourceFiles"
      actions   = ["kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.load.arn}:*"]
  }

  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions for these actions
  }
}

resource "aws_iam_role_policy" "load" {
  name   = "load"
  role   = aws_iam_role.load.id
  policy = data.aws_iam_policy_document.load.json
}

# --- the scheduler: invoke the ingest function, nothing else.

resource "aws_iam_role" "scheduler" {
  name = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "scheduler.amazonaws.com" }
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "scheduler" {
  name = "invoke-ingest"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "lambda:InvokeFunction"
      Resource = [aws_lambda_function.ingest.arn]
    }]
  })
}
