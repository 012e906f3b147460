resource "aws_s3_bucket" "staging" {
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket the operator owns; the objects here are copies of Azure logs kept for days.
  #checkov:skip=CKV_AWS_144:Cross-region replication of a staging area is not needed: the source of truth stays in Azure and the events in CloudTrail Lake.
  bucket        = local.bucket_name
  force_destroy = false
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "staging" {
  bucket                  = aws_s3_bucket.staging.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "staging" {
  bucket = aws_s3_bucket.staging.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "staging" {
  bucket = aws_s3_bucket.staging.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "staging" {
  bucket = aws_s3_bucket.staging.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "staging" {
  bucket = aws_s3_bucket.staging.id

  rule {
    id     = "expire-staged-objects"
    status = "Enabled"
    filter {
      prefix = local.staging_prefix
    }
    expiration {
      days = var.staging_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # Ingest state is rewritten every pass; only the current version matters (day shards out of
  # the window are deleted by ingest itself).
  rule {
    id     = "expire-replaced-ingest-state"
    status = "Enabled"
    filter {
      prefix = "_aztrail/ingest/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # Load checkpoints matter only while their object may be redelivered.
  rule {
    id     = "expire-load-checkpoints"
    status = "Enabled"
    filter {
      prefix = "_aztrail/load/"
    }
    expiration {
      days = var.staging_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # The ingest checkpoints are rewritten at every run: keep their history short.
  rule {
    id     = "ingest-checkpoint-history"
    status = "Enabled"
    filter {
      prefix = "_aztrail/ingest/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "staging" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.staging.arn, "${aws_s3_bucket.staging.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "staging" {
  bucket     = aws_s3_bucket.staging.id
  policy     = data.aws_iam_policy_document.staging.json
  depends_on = [aws_s3_bucket_public_access_block.staging]
}

# Every staged object is announced to the work queue; aztrail's own state under _aztrail/ is not.
resource "aws_s3_bucket_notification" "staging" {
  bucket = aws_s3_bucket.staging.id

  queue {
    queue_arn     = aws_sqs_queue.work.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = local.staging_prefix
  }

  depends_on = [aws_sqs_queue_policy.work]
}
