output "destination" {
  description = "Where the load function sends events: cloudtrail or cloudwatch."
  value       = var.destination
}

output "event_data_store_arn" {
  description = "The event data store receiving the events (null with destination = cloudwatch)."
  value       = local.event_data_store_arn
}

output "event_data_store_id" {
  description = "The event data store's id (what CloudTrail Lake queries name in FROM; null with destination = cloudwatch)."
  value       = local.cloudtrail ? element(split("/", local.event_data_store_arn), length(split("/", local.event_data_store_arn)) - 1) : null
}

output "channel_arn" {
  description = "The CloudTrail Lake channel the load function sends to (null with destination = cloudwatch)."
  value       = local.channel_arn
}

output "events_log_group" {
  description = "The CloudWatch Logs log group receiving the events (null with destination = cloudtrail)."
  value       = local.events_log_group
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of the pipeline."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "staging_bucket" {
  description = "The S3 staging bucket."
  value       = aws_s3_bucket.staging.id
}

output "work_queue_url" {
  description = "The queue of S3 notifications the load function consumes."
  value       = aws_sqs_queue.work.id
}

output "dead_letter_queue_url" {
  description = "Work messages that failed max_receive_count times."
  value       = aws_sqs_queue.dead_letter.id
}

output "failure_queue_url" {
  description = "Events that could not be loaded (for aztrail redrive)."
  value       = aws_sqs_queue.failures.id
}

output "ingest_function_name" {
  description = "The ingest Lambda function."
  value       = aws_lambda_function.ingest.function_name
}

output "load_function_name" {
  description = "The load Lambda function."
  value       = aws_lambda_function.load.function_name
}

output "kms_key_arn" {
  description = "The KMS key of the bucket, queues and logs."
  value       = local.kms_key_arn
}

output "ingest_work_queue_url" {
  description = "The ingest-work queue of the fan-out (null with ingest_workers = 0)."
  value       = one(aws_sqs_queue.ingest_work[*].id)
}

output "securitylake_locations" {
  description = "With destination = securitylake: each custom source's location by class (what --securitylake-location takes); empty otherwise."
  value       = local.securitylake_locations
}
