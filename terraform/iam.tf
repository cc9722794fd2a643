# Who may do what. One service account per function with only the roles it needs, dedicated
# invoker accounts for Pub/Sub push, Cloud Tasks and Cloud Scheduler, and no public access:
# test/terraform/iam.test.ts holds every account's roles to an expected set.

resource "google_service_account" "push_invoker" {
  project      = var.project
  account_id   = "${var.name_prefix}push-invoker"
  display_name = "Super Spine Pub/Sub push to functions"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "tasks_invoker" {
  project      = var.project
  account_id   = "${var.name_prefix}tasks-invoker"
  display_name = "Super Spine Cloud Tasks to functions"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "jobs_invoker" {
  project      = var.project
  account_id   = "${var.name_prefix}jobs-invoker"
  display_name = "Super Spine Cloud Scheduler jobs to functions"
  depends_on   = [google_project_service.api]
}

locals {
  topic_names = {
    contact_writes     = google_pubsub_topic.contact_writes.name
    group_changes      = google_pubsub_topic.group_changes.name
    dead_letters       = google_pubsub_topic.dead_letters.name
    dead_letters_final = google_pubsub_topic.dead_letters_final.name
    pending_writes     = google_pubsub_topic.pending_writes.name
    health             = google_pubsub_topic.health.name
  }

  queue_names = {
    persist   = google_cloud_tasks_queue.persist.name
    snapshots = google_cloud_tasks_queue.snapshots.name
  }

  # Topic roles of the functions: publishing, and (health) attaching its watch subscriptions.
  function_topic_roles = {
    "materialize announces changes" = { function = "materialize", topic = "group_changes", role = "roles/pubsub.publisher" }
    "materialize buffers batches"   = { function = "materialize", topic = "pending_writes", role = "roles/pubsub.publisher" }
    "persist announces changes"     = { function = "persist", topic = "group_changes", role = "roles/pubsub.publisher" }
    "persist defers writes"         = { function = "persist", topic = "pending_writes", role = "roles/pubsub.publisher" }
    "snapshot announces snapshots"  = { function = "snapshot", topic = "group_changes", role = "roles/pubsub.publisher" }
    "health writes the canary"      = { function = "health", topic = "contact_writes", role = "roles/pubsub.publisher" }
    "health publishes reports"      = { function = "health", topic = "health", role = "roles/pubsub.publisher" }
    "health watches the canary"     = { function = "health", topic = "group_changes", role = "roles/pubsub.subscriber" }
  }

  function_queue_roles = {
    "materialize books flushes"   = { function = "materialize", queue = "persist", role = "roles/cloudtasks.enqueuer" }
    "materialize books snapshots" = { function = "materialize", queue = "snapshots", role = "roles/cloudtasks.enqueuer" }
    "persist books sweeps"        = { function = "persist", queue = "persist", role = "roles/cloudtasks.enqueuer" }
    "health counts batches"       = { function = "health", queue = "persist", role = "roles/cloudtasks.viewer" }
  }

  # Object prefixes of the state bucket each function reads and writes.
  function_object_prefixes = {
    materialize = ["networks/", "content/", "dead-letters/"]
    deadletter  = ["dead-letters/"]
    persist     = ["networks/", "content/", "dead-letters/"]
    snapshot    = ["networks/"]
    health      = ["networks/", "dead-letters/", "health/"]
  }

  # The functions that book Cloud Tasks, which carry an OIDC token of the tasks invoker.
  task_booking_functions = toset(["materialize", "persist"])

  # Clients write large content by reference and replay dead letters.
  client_object_prefixes = ["content/", "dead-letters/"]
}

# ---- invocation: only the invoker accounts (and listed clients) may call the functions

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = toset(["materialize", "deadletter"])

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.function[each.value].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push_invoker.email}"
}

resource "google_cloud_run_v2_service_iam_member" "tasks_invoker" {
  for_each = toset(["persist", "snapshot"])

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.function[each.value].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks_invoker.email}"
}

resource "google_cloud_run_v2_service_iam_member" "jobs_invoker" {
  for_each = toset(["snapshot", "persist", "health"])

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.function[each.value].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.jobs_invoker.email}"
}

# ---- the functions' own accounts

resource "google_pubsub_topic_iam_member" "function" {
  for_each = local.function_topic_roles

  project = var.project
  topic   = local.topic_names[each.value.topic]
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

resource "google_pubsub_subscription_iam_member" "persist_pulls_pending" {
  project      = var.project
  subscription = google_pubsub_subscription.pending.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.function["persist"].email}"
}

resource "google_cloud_tasks_queue_iam_member" "function" {
  for_each = local.function_queue_roles

  project  = var.project
  location = var.region
  name     = local.queue_names[each.value.queue]
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

resource "google_service_account_iam_member" "function_acts_as_tasks_invoker" {
  for_each = local.task_booking_functions

  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.function[each.value].email}"
}

resource "google_storage_bucket_iam_member" "function_objects" {
  for_each = local.function_object_prefixes

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.function[each.key].email}"

  # Object names under the prefixes, and listings asked for under them.
  condition {
    title = "${each.key} objects"
    expression = join(" || ", flatten([for prefix in each.value : [
      "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${prefix}\")",
      "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\")",
    ]]))
  }
}

# The health canary's client checks that the bucket exists when it starts.
resource "google_storage_bucket_iam_member" "health_sees_bucket" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.bucketViewer"
  member = "serviceAccount:${google_service_account.function["health"].email}"
}

# Subscriptions made at run time: the health canary's (and clients') watch and acknowledgement subscriptions.
resource "google_project_iam_custom_role" "watcher" {
  project     = var.project
  role_id     = "${replace(var.name_prefix, "-", "_")}watcher"
  title       = "Super Spine watcher"
  description = "Create, read, pull from and delete the subscriptions of subscribe() and write acknowledgements."
  permissions = [
    "pubsub.subscriptions.consume",
    "pubsub.subscriptions.create",
    "pubsub.subscriptions.delete",
    "pubsub.subscriptions.get",
  ]
}

resource "google_project_iam_member" "health_watches" {
  project = var.project
  role    = google_project_iam_custom_role.watcher.id
  member  = "serviceAccount:${google_service_account.function["health"].email}"
}

# ---- the build account

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.functions_source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# ---- Pub/Sub's service agent: dead-lettering and OIDC tokens for push

resource "google_pubsub_topic_iam_member" "pubsub_agent_dead_letters" {
  for_each = toset(["dead_letters", "dead_letters_final"])

  project = var.project
  topic   = local.topic_names[each.value]
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# Acknowledging what it forwards to a dead-letter topic, for every subscription with a dead-letter
# policy, including the clients' subscriptions made at run time.
resource "google_project_iam_member" "pubsub_agent_subscriber" {
  project = var.project
  role    = "roles/pubsub.subscriber"
  member  = local.pubsub_service_agent
}

resource "google_service_account_iam_member" "pubsub_agent_push_tokens" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# ---- clients (var.client_members): SpineStorage and the spine CLI

resource "google_pubsub_topic_iam_member" "client_writes" {
  for_each = toset(var.client_members)

  project = var.project
  topic   = google_pubsub_topic.contact_writes.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "client_watches" {
  for_each = toset(var.client_members)

  project = var.project
  topic   = google_pubsub_topic.group_changes.name
  role    = "roles/pubsub.subscriber"
  member  = each.value
}

resource "google_project_iam_member" "client_watcher" {
  for_each = toset(var.client_members)

  project = var.project
  role    = google_project_iam_custom_role.watcher.id
  member  = each.value
}

resource "google_storage_bucket_iam_member" "client_reads_state" {
  for_each = toset(var.client_members)

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = each.value
}

resource "google_storage_bucket_iam_member" "client_sees_bucket" {
  for_each = toset(var.client_members)

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.bucketViewer"
  member = each.value
}

resource "google_storage_bucket_iam_member" "client_objects" {
  for_each = toset(var.client_members)

  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectUser"
  member = each.value

  condition {
    title = "client objects"
    expression = join(" || ", flatten([for prefix in local.client_object_prefixes : [
      "resource.name.startsWith(\"projects/_/buckets/${local.bucket_name}/objects/${prefix}\")",
      "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${prefix}\")",
    ]]))
  }
}

resource "google_cloud_run_v2_service_iam_member" "client_invokes_health" {
  for_each = toset(var.client_members)

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.function["health"].name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "client_invokes_snapshot" {
  for_each = toset(var.client_members)

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.function["snapshot"].name
  role     = "roles/run.invoker"
  member   = each.value
}
