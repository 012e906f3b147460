# One page for operators: both functions' embedded metrics (namespace "aztrail", dimension
# Function), the queues' depth and the alarms. The body is a template so that the wiring test
# reads the same JSON CloudWatch gets.
resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = templatefile("${path.module}/dashboard.json.tftpl", {
    region            = local.region
    load_function     = local.load_function
    ingest_function   = local.ingest_function
    work_queue        = aws_sqs_queue.work.name
    failure_queue     = aws_sqs_queue.failures.name
    dead_letter_queue = aws_sqs_queue.dead_letter.name
    alarms = jsonencode(concat(
      [for a in aws_cloudwatch_metric_alarm.queue_depth : a.arn],
      [for a in aws_cloudwatch_metric_alarm.function_errors : a.arn],
    ))
  })
}
