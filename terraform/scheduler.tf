# Cloud Scheduler jobs of scheduler/jobs.ts, calling HTTP functions with an OIDC token of the jobs invoker.

locals {
  jobs = {
    snapshots = {
      function         = "snapshot"
      description      = "Snapshot every network changed since its last snapshot, then apply retention."
      schedule         = "0 * * * *"
      attempt_deadline = "540s"
      retry            = { count = 3, min_backoff = "30s", max_backoff = "600s", max_doublings = 3 }
      body             = { networks = "changed" }
    }
    # Flushes every pending batched write (networks whose persistence is interval), booked as a task in the persist queue.
    persist-interval = {
      function         = "persist"
      description      = "Flush every pending batched write (networks whose persistence is `interval`)."
      schedule         = "* * * * *"
      attempt_deadline = "300s"
      retry            = { count = 2, min_backoff = "5s", max_backoff = "60s", max_doublings = 2 }
      body             = { all = true, enqueue = true }
    }
    health = {
      function         = "health"
      description      = "Canary write end to end, dead letters, pending batches, snapshot ages, agent liveness."
      schedule         = "*/5 * * * *"
      attempt_deadline = "120s"
      retry            = { count = 1, min_backoff = "10s", max_backoff = "60s", max_doublings = 1 }
      body             = {}
    }
  }
}

resource "google_cloud_scheduler_job" "job" {
  for_each = local.jobs

  name             = "${var.name_prefix}${each.key}"
  project          = var.project
  region           = var.region
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = each.value.attempt_deadline

  retry_config {
    retry_count          = each.value.retry.count
    min_backoff_duration = each.value.retry.min_backoff
    max_backoff_duration = each.value.retry.max_backoff
    max_doublings        = each.value.retry.max_doublings
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function[each.value.function].service_config[0].uri
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.jobs_invoker.email
      audience              = google_cloudfunctions2_function.function[each.value.function].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.jobs_invoker]
}
