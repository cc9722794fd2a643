# The event archive (shared/topology.ts ArchiveSpec): every contact-writes event, written by a
# Pub/Sub Cloud Storage subscription into time-partitioned objects under archive/ of the state
# bucket, each message's data (the CloudEvents JSON) on a line of its own. Readers
# (shared/history) de-duplicate redeliveries. Objects older than archive_retention_days are
# deleted by the state bucket's lifecycle rule on archive/ (storage.tf).

locals {
  # The only objects the archive's writer may create; the gateway reads them for history.
  archive_object_prefixes = ["archive/"]
}

resource "google_service_account" "archive_writer" {
  project      = var.project
  account_id   = "${var.name_prefix}archive-writer"
  display_name = "Super Spine event archive (Pub/Sub Cloud Storage subscription)"
  depends_on   = [google_project_service.api]
}

# Create only: no read, overwrite or delete, and only under the archive prefix.
resource "google_storage_bucket_iam_member" "archive_writer_creates" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.archive_writer.email}"

  condition {
    title = "archive objects"
    expression = join(" || ", flatten([for prefix in local.archive_object_prefixes : [
      "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${prefix}\")",
      "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\")",
    ]]))
  }
}

# A Cloud Storage subscription checks the bucket (storage.buckets.get) before writing to it.
resource "google_storage_bucket_iam_member" "archive_writer_sees_bucket" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.bucketViewer"
  member = "serviceAccount:${google_service_account.archive_writer.email}"
}

# Pub/Sub writes as the archive writer, with tokens its service agent mints for it.
resource "google_service_account_iam_member" "pubsub_agent_archive_tokens" {
  service_account_id = google_service_account.archive_writer.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

resource "google_pubsub_subscription" "archive" {
  name                       = "${var.name_prefix}archive"
  project                    = var.project
  topic                      = google_pubsub_topic.contact_writes.id
  ack_deadline_seconds       = 10
  enable_message_ordering    = false
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }

  # Never expires.
  expiration_policy {
    ttl = ""
  }

  # Text format: each message's data, newline-delimited, in objects named
  # archive/contact-writes/YYYY-MM-DD/hh/mm-ss_<uuid>.jsonl (the time the object's batch began).
  cloud_storage_config {
    bucket                   = google_storage_bucket.state.name
    filename_prefix          = "archive/contact-writes/"
    filename_suffix          = ".jsonl"
    filename_datetime_format = "YYYY-MM-DD/hh/mm-ss"
    max_duration             = "60s"
    max_bytes                = 104857600
    service_account_email    = google_service_account.archive_writer.email
  }

  depends_on = [
    google_storage_bucket_iam_member.archive_writer_creates,
    google_storage_bucket_iam_member.archive_writer_sees_bucket,
    google_service_account_iam_member.pubsub_agent_archive_tokens,
  ]
}

# The gateway answers history requests from the archive: it reads it, nothing more.
resource "google_storage_bucket_iam_member" "gateway_reads_archive" {
  count = local.gateway_enabled ? 1 : 0

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.gateway[0].email}"

  condition {
    title = "gateway reads the archive"
    expression = join(" || ", flatten([for prefix in local.archive_object_prefixes : [
      "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${prefix}\")",
      "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\")",
    ]]))
  }
}
