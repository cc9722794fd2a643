# The gateway (gateway/main.ts): NetworkStorage over HTTP and WebSocket for agents without Google
# Cloud credentials, on Cloud Run, built from var.gateway_image (off while it is empty). It
# authenticates every request with API keys (spine keys create), so it may be public: with
# var.gateway_public, allUsers may invoke it and nothing else. Its own account holds only what
# SpineStorage needs: publish writes, watch changes, read state, write large content, read keys.

locals {
  gateway_enabled = var.gateway_image != ""

  # Object prefixes of the state bucket: the state it reads (and snapshots it deletes), large content
  # it writes by reference, and the API key records of gateway/keys.ts (KEYS_OBJECT_PREFIX), read only.
  gateway_object_prefixes = ["networks/", "content/"]
  gateway_key_prefixes    = ["gateway-keys/"]

  # The settings of shared/settings.ts the gateway's mesh client reads, as the functions have them.
  gateway_env = {
    GOOGLE_CLOUD_PROJECT = var.project
    SPINE_TOPIC_PREFIX   = var.name_prefix
    SPINE_BUCKET         = google_storage_bucket.state.name
    SPINE_PERSIST_ON     = var.persist_on
    SPINE_GATEWAY_HOST   = "0.0.0.0"
  }
}

resource "google_service_account" "gateway" {
  count = local.gateway_enabled ? 1 : 0

  project      = var.project
  account_id   = "${var.name_prefix}gateway"
  display_name = "Super Spine gateway"
  depends_on   = [google_project_service.api]
}

resource "google_cloud_run_v2_service" "gateway" {
  count = local.gateway_enabled ? 1 : 0

  name     = "${var.name_prefix}gateway"
  project  = var.project
  location = var.region
  ingress  = "INGRESS_TRAFFIC_ALL"
  # It keeps no state of its own: replacing or removing it loses nothing.
  deletion_protection = false

  template {
    service_account = google_service_account.gateway[0].email
    # WebSocket subscriptions stay open: the longest request Cloud Run allows, then clients resume.
    timeout                          = "3600s"
    max_instance_request_concurrency = 1000

    scaling {
      min_instance_count = 1
      max_instance_count = var.gateway_max_instances
    }

    containers {
      image = var.gateway_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu = "1"
          # bench:gateway: about 0.4 GB resident at rest, 0.6 GB with 1,000 subscribers.
          memory = "1Gi"
        }
        # The mesh client pulls Pub/Sub (acknowledgements, subscriptions) between requests too.
        cpu_idle = false
      }

      dynamic "env" {
        for_each = merge(local.gateway_env, var.gateway_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_cloud_run_v2_service_iam_member" "gateway_public" {
  count = local.gateway_enabled && var.gateway_public ? 1 : 0

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.gateway[0].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_pubsub_topic_iam_member" "gateway_writes" {
  count = local.gateway_enabled ? 1 : 0

  project = var.project
  topic   = google_pubsub_topic.contact_writes.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.gateway[0].email}"
}

resource "google_pubsub_topic_iam_member" "gateway_watches" {
  count = local.gateway_enabled ? 1 : 0

  project = var.project
  topic   = google_pubsub_topic.group_changes.name
  role    = "roles/pubsub.subscriber"
  member  = "serviceAccount:${google_service_account.gateway[0].email}"
}

# The subscriptions of subscribe() and of its write acknowledgements, made and removed at run time.
resource "google_project_iam_member" "gateway_watcher" {
  count = local.gateway_enabled ? 1 : 0

  project = var.project
  role    = google_project_iam_custom_role.watcher.id
  member  = "serviceAccount:${google_service_account.gateway[0].email}"
}

resource "google_storage_bucket_iam_member" "gateway_sees_bucket" {
  count = local.gateway_enabled ? 1 : 0

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.bucketViewer"
  member = "serviceAccount:${google_service_account.gateway[0].email}"
}

resource "google_storage_bucket_iam_member" "gateway_objects" {
  count = local.gateway_enabled ? 1 : 0

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.gateway[0].email}"

  condition {
    title = "gateway objects"
    expression = join(" || ", flatten([for prefix in local.gateway_object_prefixes : [
      "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${prefix}\")",
      "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\")",
    ]]))
  }
}

resource "google_storage_bucket_iam_member" "gateway_reads_keys" {
  count = local.gateway_enabled ? 1 : 0

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.gateway[0].email}"

  condition {
    title = "gateway key records"
    expression = join(" || ", flatten([for prefix in local.gateway_key_prefixes : [
      "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${prefix}\")",
      "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\")",
    ]]))
  }
}
