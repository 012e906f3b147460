# destination = "securitylake": one Security Lake custom source per OCSF class the load function
# writes (Security Lake takes one class per source), each with the Glue crawler role Security Lake
# needs to catalogue it. The load role may write only under these sources' locations (iam.tf).
# Security Lake itself must already be enabled in the region (aws_securitylake_data_lake, usually
# managed by the security account).

locals {
  securitylake_classes = local.securitylake ? var.securitylake_event_classes : {}
  # s3://aws-security-data-lake-REGION-HASH/ext/SOURCE/VERSION/ by class.
  securitylake_locations = { for class, source in aws_securitylake_custom_log_source.this : class => source.provider_details[0].location }
  securitylake_bucket    = local.securitylake ? split("/", values(local.securitylake_locations)[0])[2] : null
  # arn:aws:s3:::BUCKET/ext/SOURCE/VERSION/* by class: where the load role may put objects.
  securitylake_object_arns = [for location in values(local.securitylake_locations) : "arn:${local.partition}:s3:::${trimsuffix(trimprefix(location, "s3://"), "/")}/*"]
}

resource "aws_iam_role" "securitylake_crawler" {
  count = local.securitylake ? 1 : 0
  name  = "${var.name}-securitylake-crawler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "glue.amazonaws.com" }
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "securitylake_crawler_glue" {
  count      = local.securitylake ? 1 : 0
  role       = aws_iam_role.securitylake_crawler[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSGlueServiceRole"
}

data "aws_iam_policy_document" "securitylake_crawler" {
  count = local.securitylake ? 1 : 0

  # The crawler reads the custom sources' objects in Security Lake's bucket (named
  # aws-security-data-lake-REGION-…; the sources' own prefixes start with the module's name).
  statement {
    sid     = "ReadSources"
    actions = ["s3:GetObject", "s3:ListBucket"]
    resources = [
      "arn:${local.partition}:s3:::aws-security-data-lake-${local.region}-*",
      "arn:${local.partition}:s3:::aws-security-data-lake-${local.region}-*/ext/${var.name}-*",
    ]
  }
}

resource "aws_iam_role_policy" "securitylake_crawler" {
  count  = local.securitylake ? 1 : 0
  name   = "read-sources"
  role   = aws_iam_role.securitylake_crawler[0].id
  policy = data.aws_iam_policy_document.securitylake_crawler[0].json
}

resource "aws_securitylake_custom_log_source" "this" {
  for_each       = local.securitylake_classes
  source_name    = "${var.name}-${replace(each.key, "_", "-")}"
  source_version = "1.0"
  event_classes  = [each.value]

  configuration {
    crawler_configuration {
      role_arn = aws_iam_role.securitylake_crawler[0].arn
    }
    provider_identity {
      principal   = local.account
      external_id = "${var.name}-${local.account}"
    }
  }

  depends_on = [aws_iam_role_policy_attachment.securitylake_crawler_glue, aws_iam_role_policy.securitylake_crawler]
}
