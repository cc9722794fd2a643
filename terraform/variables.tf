variable "project" {
  description = "Google Cloud project id to deploy into (GOOGLE_CLOUD_PROJECT of the functions and clients)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the Cloud Tasks queues, the Cloud Scheduler jobs and the state bucket."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every topic, subscription, queue, job, function and service account name (SPINE_TOPIC_PREFIX), so deployments can share a project."
  type        = string
  default     = "spine-"

  # Service account ids are at most 30 characters: the prefix plus "materialize" or "tasks-invoker" must fit.
  validation {
    condition     = can(regex("^([a-z][a-z0-9-]{0,16})?$", var.name_prefix))
    error_message = "The name_prefix must be empty or start with a lowercase letter, hold only lowercase letters, digits and hyphens, and be at most 17 characters."
  }
}

variable "persist_on" {
  description = "When the functions write materialized state (SPINE_PERSIST_ON): immediate, batch, interval or manual."
  type        = string
  default     = "immediate"

  # The modes of shared/settings.ts (PERSIST_MODES); the drift test holds this list to it.
  validation {
    condition     = contains(["immediate", "batch", "interval", "manual"], var.persist_on)
    error_message = "The persist_on must be one of immediate, batch, interval, manual."
  }
}

variable "bucket_name" {
  description = "Name of the state bucket (SPINE_BUCKET); empty for \"<project>-<name_prefix>state\"."
  type        = string
  default     = ""
}

variable "functions_archive" {
  description = "Path of the packaged functions, as `npm run build:functions` writes it."
  type        = string
  default     = "../dist/functions.zip"
}

variable "nodejs_runtime" {
  description = "Cloud Functions (2nd gen) Node runtime."
  type        = string
  default     = "nodejs22"

  validation {
    condition     = contains(["nodejs22", "nodejs24"], var.nodejs_runtime)
    error_message = "The nodejs_runtime must be nodejs22 or nodejs24 (the bundle targets Node 22)."
  }
}

variable "client_ingress" {
  description = "Ingress of the functions clients call directly (health, snapshot): ALLOW_INTERNAL_ONLY, or ALLOW_ALL for callers outside the project's network. Invocation always needs IAM."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.client_ingress)
    error_message = "The client_ingress must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "client_members" {
  description = "Principals that use the mesh as clients (SpineStorage, the spine CLI), e.g. \"user:me@example.com\": they publish writes, watch changes, read state and call the health and snapshot functions."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.client_members : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", member))])
    error_message = "Each client member must be an IAM principal such as user:NAME@DOMAIN or serviceAccount:EMAIL; allUsers and allAuthenticatedUsers are refused."
  }
}

variable "enable_apis" {
  description = "Enable the Google Cloud APIs the deployment uses."
  type        = bool
  default     = true
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted version of a state object is kept (the state bucket is versioned)."
  type        = number
  default     = 7
}

variable "cloud_sql_enabled" {
  description = "Materialize state into a Cloud SQL for PostgreSQL instance (private IP, IAM database authentication) instead of Cloud Storage."
  type        = bool
  default     = false
}

variable "cloud_sql_tier" {
  description = "Machine tier of the Cloud SQL instance."
  type        = string
  default     = "db-custom-1-3840"
}

variable "cloud_sql_database_version" {
  description = "PostgreSQL version of the Cloud SQL instance."
  type        = string
  default     = "POSTGRES_16"
}

variable "cloud_sql_network" {
  description = "Name of the VPC network the Cloud SQL instance gets its private IP in and the functions reach it through."
  type        = string
  default     = "default"
}

variable "vpc_connector_cidr" {
  description = "Unused /28 range of cloud_sql_network for the Serverless VPC Access connector the functions reach Cloud SQL through."
  type        = string
  default     = "10.8.0.0/28"
}

variable "cloud_sql_deletion_protection" {
  description = "Refuse to destroy the Cloud SQL instance."
  type        = bool
  default     = true
}

variable "gateway_image" {
  description = "Container image of the gateway (gateway/main.ts); empty: no gateway is deployed."
  type        = string
  default     = ""
}

variable "gateway_public" {
  description = "Let anyone reach the gateway (allUsers may invoke it); it still refuses every request without a valid API key."
  type        = bool
  default     = true
}

variable "gateway_max_instances" {
  description = "Most gateway instances Cloud Run runs at once."
  type        = number
  default     = 5
}

variable "gateway_env" {
  description = "More settings of the gateway (SPINE_GATEWAY_MAX_BODY_BYTES, SPINE_GATEWAY_KEY_CACHE_MS, SPINE_GATEWAY_MAX_BUFFERED_BYTES, SPINE_STATE_PREFIX…)."
  type        = map(string)
  default     = {}
}

variable "archive_retention_days" {
  description = "Days the event archive (every contact write, under archive/ of the state bucket) is kept."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_retention_days >= 1 && floor(var.archive_retention_days) == var.archive_retention_days
    error_message = "archive_retention_days must be a whole number of days, at least 1."
  }
}
