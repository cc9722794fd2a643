# The state bucket of shared/topology.ts (BucketSpec): materialized state, content by reference,
# dead letters, health reports, snapshots.
resource "google_storage_bucket" "state" {
  name                        = local.bucket_name
  project                     = var.project
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["dead-letters/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["health/"]
    }
    action {
      type = "Delete"
    }
  }

  # The event archive (archive.tf) is kept archive_retention_days.
  lifecycle_rule {
    condition {
      age            = var.archive_retention_days
      matches_prefix = ["archive/"]
    }
    action {
      type = "Delete"
    }
  }

  # Versioning keeps what a write replaced for a while, not forever: every contact write replaces an object.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api]
}

# The packaged functions (npm run build:functions), named by content so a change redeploys them.
resource "google_storage_bucket" "functions_source" {
  name                        = local.source_bucket_name
  project                     = var.project
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_object" "functions_source" {
  name   = "functions-${filemd5(var.functions_archive)}.zip"
  bucket = google_storage_bucket.functions_source.name
  source = var.functions_archive
}
