variable "name" {
  description = "Prefix of every resource name (bucket names add the account id and region)."
  type        = string
  default     = "aztrail"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2 to 31 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "destination" {
  description = "Where events go: cloudtrail (CloudTrail Lake: an event data store and a channel), cloudwatch (a CloudWatch Logs log group, for accounts CloudTrail Lake no longer admits; it takes events up to 14 days old only) or securitylake (Amazon Security Lake: one custom source per OCSF class, OCSF 1.1.0 Parquet; Security Lake must be enabled in the region)."
  type        = string
  default     = "cloudtrail"

  validation {
    condition     = contains(["cloudtrail", "cloudwatch", "securitylake"], var.destination)
    error_message = "destination must be cloudtrail, cloudwatch or securitylake."
  }
}

variable "securitylake_event_classes" {
  description = "With destination = securitylake: the custom sources created, by aztrail's class name, each with the Security Lake event class it declares."
  type        = map(string)
  default = {
    api_activity      = "API_ACTIVITY"
    authentication    = "AUTHENTICATION"
    account_change    = "ACCOUNT_CHANGE"
    entity_management = "ENTITY_MANAGEMENT_AUDIT"
  }

  validation {
    condition     = length(setsubtract(keys(var.securitylake_event_classes), ["api_activity", "authentication", "account_change", "entity_management"])) == 0
    error_message = "securitylake_event_classes keys must be among api_activity, authentication, account_change and entity_management."
  }
}

variable "securitylake_batch_window_seconds" {
  description = "With destination = securitylake: how long the load function's SQS trigger gathers notifications into one invocation (one batch of files per class and day). Security Lake wants a source's files no more often than every 5 minutes."
  type        = number
  default     = 300

  validation {
    condition     = var.securitylake_batch_window_seconds >= 0 && var.securitylake_batch_window_seconds <= 300
    error_message = "securitylake_batch_window_seconds must be from 0 to 300 (the most an SQS trigger allows)."
  }
}

variable "securitylake_ephemeral_storage_mb" {
  description = "With destination = securitylake: the load function's /tmp, where a batch is spooled before it is written as Parquet (about the size of the batch's records)."
  type        = number
  default     = 4096

  validation {
    condition     = var.securitylake_ephemeral_storage_mb >= 512 && var.securitylake_ephemeral_storage_mb <= 10240
    error_message = "securitylake_ephemeral_storage_mb must be from 512 to 10240."
  }
}

variable "securitylake_kms_key_arn" {
  description = "With destination = securitylake: the KMS key of Security Lake's bucket, when it is encrypted with one (the load role may then use it to write)."
  type        = string
  default     = null
}

variable "events_log_retention_days" {
  description = "With destination = cloudwatch: retention of the events log group, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.events_log_retention_days)
    error_message = "events_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "event_data_store_arn" {
  description = "An existing CloudTrail Lake event data store for integration events (ActivityAuditLog). When null, one is created."
  type        = string
  default     = null

  validation {
    condition     = var.event_data_store_arn == null || can(regex("^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:[0-9]{12}:eventdatastore/.+$", var.event_data_store_arn))
    error_message = "event_data_store_arn must be a CloudTrail event data store ARN."
  }
}

variable "retention_days" {
  description = "Retention of the created event data store, in days (7 to 2557). With the default one-year extendable pricing the first 366 days are included in the ingestion price."
  type        = number
  default     = 366

  validation {
    condition     = var.retention_days >= 7 && var.retention_days <= 2557 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number from 7 to 2557."
  }
}

variable "billing_mode" {
  description = "Pricing of the created event data store: EXTENDABLE_RETENTION_PRICING (one year included, recommended for events from outside AWS) or FIXED_RETENTION_PRICING (seven years included)."
  type        = string
  default     = "EXTENDABLE_RETENTION_PRICING"

  validation {
    condition     = contains(["EXTENDABLE_RETENTION_PRICING", "FIXED_RETENTION_PRICING"], var.billing_mode)
    error_message = "billing_mode must be EXTENDABLE_RETENTION_PRICING or FIXED_RETENTION_PRICING."
  }
}

variable "azure_containers" {
  description = "Azure Storage containers to read: the Activity Log's and Entra ID's diagnostic settings containers."
  type        = list(string)
  default     = ["insights-activity-logs", "insights-logs-auditlogs", "insights-logs-signinlogs"]

  validation {
    condition     = length(var.azure_containers) > 0 && alltrue([for c in var.azure_containers : can(regex("^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$", c))])
    error_message = "azure_containers must list at least one valid Azure container name (3 to 63 lowercase letters, digits and single hyphens)."
  }
}

variable "azure_secret_arn" {
  description = "Secrets Manager secret holding the Azure credentials (JSON with connectionString, sasUrl, accountUrl+sasToken, or accountUrl+tenantId+clientId+clientSecret). Read by the ingest function at run time only."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.azure_secret_arn))
    error_message = "azure_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "azure_secret_kms_key_arn" {
  description = "The customer managed KMS key encrypting the Azure secret, if any (the ingest function gets kms:Decrypt on it)."
  type        = string
  default     = null
}

variable "schedule_expression" {
  description = "When ingest runs (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be a rate(...) or cron(...) expression."
  }
}

variable "lookback" {
  description = "How far back ingest looks for changed blobs (for example 48h)."
  type        = string
  default     = "48h"

  validation {
    condition     = can(regex("^[0-9]+[smhd]$", var.lookback))
    error_message = "lookback is a number and a unit: s, m, h or d (for example 48h)."
  }
}

variable "settle" {
  description = "Copy an hour's blob only once it stopped growing (fewer, whole-hour objects; later delivery)."
  type        = bool
  default     = false
}

variable "load_max_concurrency" {
  description = "Maximum load function instances (the SQS event source mapping's maximum concurrency). The account's 100 PutAuditEvents calls per second are shared among them."
  type        = number
  default     = 4

  validation {
    condition     = var.load_max_concurrency >= 2 && var.load_max_concurrency <= 100
    error_message = "load_max_concurrency must be from 2 (the event source mapping's minimum) to 100."
  }
}

variable "account_calls_per_second" {
  description = "Calls per second the account may use, divided among load instances. Null: 100 for CloudTrail Lake (PutAuditEvents' quota) and 800 for CloudWatch Logs (PutLogEvents' lowest regional quota; raisable, and 5,000 in the largest regions)."
  type        = number
  default     = null

  validation {
    condition     = var.account_calls_per_second == null || (coalesce(var.account_calls_per_second, 1) > 0 && coalesce(var.account_calls_per_second, 1) <= 10000)
    error_message = "account_calls_per_second must be above 0 and at most 10000."
  }
}

variable "ingest_workers" {
  description = "Ingest workers at once for a big tenant: 0 runs one pass per schedule tick; more fans each tick's roots out to an SQS queue of work shards, taken by up to this many instances."
  type        = number
  default     = 0

  validation {
    condition     = var.ingest_workers >= 0 && var.ingest_workers <= 1000
    error_message = "ingest_workers must be from 0 to 1000."
  }
}

variable "ingest_work_shards" {
  description = "With ingest_workers > 0: the shards each container's roots are split into per tick (keep it fixed; each shard remembers what it saw)."
  type        = number
  default     = 16

  validation {
    condition     = var.ingest_work_shards >= 1 && var.ingest_work_shards <= 4096
    error_message = "ingest_work_shards must be from 1 to 4096."
  }
}

variable "ingest_memory_mb" {
  description = "Memory of the ingest function, in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.ingest_memory_mb >= 128 && var.ingest_memory_mb <= 10240
    error_message = "ingest_memory_mb must be from 128 to 10240."
  }
}

variable "load_memory_mb" {
  description = "Memory of the load function, in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.load_memory_mb >= 128 && var.load_memory_mb <= 10240
    error_message = "load_memory_mb must be from 128 to 10240."
  }
}

variable "ingest_timeout_seconds" {
  description = "Timeout of the ingest function."
  type        = number
  default     = 300

  validation {
    condition     = var.ingest_timeout_seconds >= 30 && var.ingest_timeout_seconds <= 900
    error_message = "ingest_timeout_seconds must be from 30 to 900."
  }
}

variable "load_timeout_seconds" {
  description = "Timeout of the load function; the work queue's visibility timeout is six times this."
  type        = number
  default     = 300

  validation {
    condition     = var.load_timeout_seconds >= 60 && var.load_timeout_seconds <= 900
    error_message = "load_timeout_seconds must be from 60 to 900."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a work message before it moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be from 1 to 1000."
  }
}

variable "staging_retention_days" {
  description = "Days staged objects (and load checkpoints) are kept in the staging bucket."
  type        = number
  default     = 14

  validation {
    condition     = var.staging_retention_days >= 1 && var.staging_retention_days <= 3650
    error_message = "staging_retention_days must be from 1 to 3650."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "kms_key_arn" {
  description = "A KMS key for the bucket, queues, logs and function environment. When null, one is created (with rotation)."
  type        = string
  default     = null
}

variable "lambda_zip" {
  description = "The functions' deployment package: the aztrail binary as bootstrap, built by scripts/build-lambda (cargo lambda build --release --arm64 --output-format zip). Both functions use it; the handler setting picks load or ingest."
  type        = string
  default     = "../../target/lambda/aztrail/bootstrap.zip"
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires (for example an SNS topic)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
