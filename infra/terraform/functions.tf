resource "aws_cloudwatch_log_group" "ingest" {
  name              = "/aws/lambda/${local.ingest_function}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "load" {
  name              = "/aws/lambda/${local.load_function}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

# Ingest: one pass per schedule tick, copying new Azure bytes into the staging bucket.
resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_117:Ingest reads Azure Storage over the internet; a VPC would add a NAT gateway (cost, and one more part to fail) for no isolation gain.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile in the operator's account; the zip is built from this repository by scripts/build-lambda.
  function_name    = local.ingest_function
  description      = "aztrail: new bytes of Azure log blobs into the staging bucket"
  role             = aws_iam_role.ingest.arn
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "ingest"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  memory_size      = var.ingest_memory_mb
  timeout          = var.ingest_timeout_seconds
  # One pass at a time, or the fan-out's workers and the tick that feeds them.
  reserved_concurrent_executions = local.fan_out ? var.ingest_workers + 1 : 1
  kms_key_arn                    = local.kms_key_arn

  environment {
    variables = merge({
      AZTRAIL_CONTAINERS       = join(",", var.azure_containers)
      AZTRAIL_STAGING_BUCKET   = aws_s3_bucket.staging.id
      AZTRAIL_STAGING_PREFIX   = local.staging_prefix
      AZTRAIL_AZURE_SECRET_ARN = var.azure_secret_arn
      AZTRAIL_LOOKBACK         = var.lookback
      AZTRAIL_SETTLE           = tostring(var.settle)
      }, local.fan_out ? {
      AZTRAIL_INGEST_WORK_QUEUE_URL = one(aws_sqs_queue.ingest_work[*].id)
      AZTRAIL_WORK_SHARDS           = tostring(var.ingest_work_shards)
    } : {})
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.ingest.name
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.ingest]
}

# Load: SQS batches of S3 notifications in, partial batch failures out.
resource "aws_lambda_function" "load" {
  #checkov:skip=CKV_AWS_117:Load calls S3, SQS and CloudTrail's public endpoints; a VPC would need endpoints or NAT for no isolation gain.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile in the operator's account; the zip is built from this repository by scripts/build-lambda.
  #checkov:skip=CKV_AWS_116:Load is invoked by an SQS event source mapping: failed messages go to the work queue's dead-letter queue, not a function DLQ.
  function_name                  = local.load_function
  description                    = local.cloudtrail ? "aztrail: staged objects into CloudTrail Lake" : local.cloudwatch ? "aztrail: staged objects into CloudWatch Logs" : "aztrail: staged objects into Security Lake (OCSF Parquet)"
  role                           = aws_iam_role.load.arn
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  handler                        = "load"
  runtime                        = "provided.al2023"
  architectures                  = ["arm64"]
  memory_size                    = var.load_memory_mb
  timeout                        = var.load_timeout_seconds
  reserved_concurrent_executions = var.load_max_concurrency
  kms_key_arn                    = local.kms_key_arn

  # Security Lake batches are spooled to /tmp before they are written as Parquet.
  ephemeral_storage {
    size = local.securitylake ? var.securitylake_ephemeral_storage_mb : 512
  }

  environment {
    variables = merge(local.destination_env, {
      AZTRAIL_QUEUE_URL               = aws_sqs_queue.work.id
      AZTRAIL_FAILURE_QUEUE_URL       = aws_sqs_queue.failures.id
      AZTRAIL_MAX_CALLS_PER_SECOND    = tostring(local.load_calls_per_second)
      AZTRAIL_CONCURRENCY             = "8"
      AZTRAIL_VISIBILITY_TIMEOUT      = tostring(6 * var.load_timeout_seconds)
      AZTRAIL_DEADLINE_MARGIN_SECONDS = "30"
    })
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.load.name
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.load]
}

resource "aws_lambda_event_source_mapping" "load" {
  event_source_arn = aws_sqs_queue.work.arn
  function_name    = aws_lambda_function.load.arn
  # Security Lake: one invocation gathers up to the window's notifications into one batch of
  # files (it wants a source's files no more often than every 5 minutes); the others send events
  # as they come.
  batch_size                         = local.securitylake ? 10000 : 10
  maximum_batching_window_in_seconds = local.securitylake ? var.securitylake_batch_window_seconds : 5
  function_response_types            = ["ReportBatchItemFailures"]

  # As many instances as the rate limit was divided by (AZTRAIL_MAX_CALLS_PER_SECOND).
  scaling_config {
    maximum_concurrency = var.load_max_concurrency
  }
}

resource "aws_scheduler_schedule" "ingest" {
  name                         = "${var.name}-ingest"
  description                  = "aztrail: one ingest pass"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = local.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.ingest.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ source = "aztrail-schedule" })

    retry_policy {
      maximum_event_age_in_seconds = 300
      maximum_retry_attempts       = 2
    }
  }
}
