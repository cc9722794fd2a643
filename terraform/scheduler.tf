# Cloud Scheduler jobs of scheduler/jobs.ts, calling HTTP functions with an OIDC token of the jobs invoker.

resource "google_cloud_scheduler_job" "snapshots" {
  name             = "${var.name_prefix}snapshots"
  project          = var.project
  region           = var.region
  description      = "Snapshot every network changed since its last snapshot, then apply retention."
  schedule         = "0 * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "540s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function["snapshot"].service_config[0].uri
    body        = base64encode(jsonencode({ networks = "changed" }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.jobs_invoker.email
      audience              = google_cloudfunctions2_function.function["snapshot"].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.jobs_invoker]
}

# Flushes every pending batched write (networks whose persistence is interval), booked as a task in the persist queue.
resource "google_cloud_scheduler_job" "persist_interval" {
  name             = "${var.name_prefix}persist-interval"
  project          = var.project
  region           = var.region
  description      = "Flush every pending batched write (networks whose persistence is `interval`)."
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"

  retry_config {
    retry_count          = 2
    min_backoff_duration = "5s"
    max_backoff_duration = "60s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function["persist"].service_config[0].uri
    body        = base64encode(jsonencode({ all = true, enqueue = true }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.jobs_invoker.email
      audience              = google_cloudfunctions2_function.function["persist"].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.jobs_invoker]
}

resource "google_cloud_scheduler_job" "health" {
  name             = "${var.name_prefix}health"
  project          = var.project
  region           = var.region
  description      = "Canary write end to end, dead letters, pending batches, snapshot ages, agent liveness."
  schedule         = "*/5 * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"

  retry_config {
    retry_count          = 1
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
    max_doublings        = 1
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function["health"].service_config[0].uri
    body        = base64encode(jsonencode({}))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.jobs_invoker.email
      audience              = google_cloudfunctions2_function.function["health"].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.jobs_invoker]
}
