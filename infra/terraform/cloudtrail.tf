# The event data store for integration events, unless an existing one is given.
resource "aws_cloudtrail_event_data_store" "this" {
  #checkov:skip=CKV_AWS_391:The store uses CloudTrail's own encryption; a customer key would need CloudTrail in its key policy and makes the store unusable if the key is disabled. Set kms_key_id here if your policy requires it.
  count = local.cloudtrail && var.event_data_store_arn == null ? 1 : 0

  name                           = "${var.name}-azure"
  retention_period               = var.retention_days
  billing_mode                   = var.billing_mode
  multi_region_enabled           = false
  organization_enabled           = false
  termination_protection_enabled = true

  advanced_event_selector {
    name = "Azure events from the aztrail channel"
    field_selector {
      field  = "eventCategory"
      equals = ["ActivityAuditLog"]
    }
  }

  tags = local.tags
}

# The channel the load function sends to (source Custom). The AWS provider has no channel
# resource; the Cloud Control provider (awscc) manages it.
resource "awscc_cloudtrail_channel" "this" {
  count  = local.cloudtrail ? 1 : 0
  name   = "${var.name}-azure"
  source = "Custom"
  destinations = [{
    type     = "EVENT_DATA_STORE"
    location = local.event_data_store_arn
  }]
  tags = [for k, v in local.tags : { key = k, value = v }]
}

# Only the load function's role may put events into the channel.
data "aws_iam_policy_document" "channel" {
  count = local.cloudtrail ? 1 : 0
  statement {
    sid       = "LoadFunctionOnly"
    actions   = ["cloudtrail-data:PutAuditEvents"]
    resources = [local.channel_arn]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.load.arn]
    }
  }
}

resource "awscc_cloudtrail_resource_policy" "channel" {
  count           = local.cloudtrail ? 1 : 0
  resource_arn    = local.channel_arn
  resource_policy = data.aws_iam_policy_document.channel[0].json
}
