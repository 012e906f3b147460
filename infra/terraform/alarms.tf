# Something needs a person: messages that could not be loaded after every retry, events the
# service refused, a function failing.

resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  for_each = merge({
    dead-letter-queue = {
      queue = aws_sqs_queue.dead_letter.name
      about = "Work messages whose objects could not be loaded after ${var.max_receive_count} deliveries: inspect, then redrive the queue."
    }
    failure-queue = {
      queue = aws_sqs_queue.failures.name
      about = "Events that could not be loaded: read their errorCode, fix, then `aztrail redrive`."
    }
    }, local.fan_out ? {
    ingest-work-dead-letter-queue = {
      queue = one(aws_sqs_queue.ingest_work_dlq[*].name)
      about = "Ingest work shards that failed ${var.max_receive_count} times: see the ingest log group for the shard's warnings; the next tick sends the shard again."
    }
  } : {})

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.about
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.queue }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = {
    ingest = aws_lambda_function.ingest.function_name
    load   = aws_lambda_function.load.function_name
  }

  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed; see its log group."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
