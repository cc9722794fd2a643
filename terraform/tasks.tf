# Cloud Tasks queues of shared/topology.ts (QueueSpec). Tasks carry their target URL (the persist
# or snapshot function, from SPINE_FUNCTION_URLS) and an OIDC token of the tasks invoker.

resource "google_cloud_tasks_queue" "persist" {
  name     = "${var.name_prefix}persist"
  project  = var.project
  location = var.region

  rate_limits {
    max_dispatches_per_second = 500
    # One flush at a time: each drains everything pending, so a group is written once per run.
    max_concurrent_dispatches = 1
  }

  retry_config {
    max_attempts       = 100
    min_backoff        = "0.5s"
    max_backoff        = "60s"
    max_doublings      = 5
    max_retry_duration = "0s"
  }

  depends_on = [google_project_service.api]
}

resource "google_cloud_tasks_queue" "snapshots" {
  name     = "${var.name_prefix}snapshots"
  project  = var.project
  location = var.region

  rate_limits {
    max_dispatches_per_second = 10
    max_concurrent_dispatches = 2
  }

  retry_config {
    max_attempts       = 10
    min_backoff        = "1s"
    max_backoff        = "300s"
    max_doublings      = 4
    max_retry_duration = "0s"
  }

  depends_on = [google_project_service.api]
}
