# Super Spine on Google Cloud: the mesh of shared/topology.ts and scheduler/jobs.ts.
# test/terraform/drift.test.ts holds every name and setting here to that code.

data "google_project" "this" {
  project_id = var.project
}

locals {
  bucket_name        = coalesce(var.bucket_name, "${var.project}-${var.name_prefix}state")
  source_bucket_name = "${var.project}-${var.name_prefix}functions-source"

  # The functions of shared/topology.ts (FunctionSpec): the targets functions/index.ts registers.
  functions = {
    materialize = {
      entry_point     = "materialize"
      memory_mb       = 512
      timeout_seconds = 60
      min_instances   = 0
      max_instances   = 20
      ingress         = "ALLOW_INTERNAL_ONLY"
      uses_state      = true
    }
    deadletter = {
      entry_point     = "deadletter"
      memory_mb       = 256
      timeout_seconds = 30
      min_instances   = 0
      max_instances   = 2
      ingress         = "ALLOW_INTERNAL_ONLY"
      uses_state      = false
    }
    persist = {
      entry_point     = "persist"
      memory_mb       = 512
      timeout_seconds = 300
      min_instances   = 0
      max_instances   = 10
      ingress         = "ALLOW_INTERNAL_ONLY"
      uses_state      = true
    }
    snapshot = {
      entry_point     = "snapshot"
      memory_mb       = 1024
      timeout_seconds = 540
      min_instances   = 0
      max_instances   = 2
      ingress         = var.client_ingress
      uses_state      = true
    }
    health = {
      entry_point     = "health"
      memory_mb       = 256
      timeout_seconds = 120
      min_instances   = 0
      max_instances   = 1
      ingress         = var.client_ingress
      uses_state      = true
    }
  }

  # Cloud Run's deterministic URLs of the functions Cloud Tasks calls. Written out rather than read
  # from the functions, because persist books tasks for itself: its own URL is part of its settings.
  function_urls = {
    persist  = "https://${var.name_prefix}persist-${data.google_project.this.number}.${var.region}.run.app"
    snapshot = "https://${var.name_prefix}snapshot-${data.google_project.this.number}.${var.region}.run.app"
  }

  # The settings of shared/settings.ts every function runs with.
  function_env = {
    GOOGLE_CLOUD_PROJECT        = var.project
    SPINE_TOPIC_PREFIX          = var.name_prefix
    SPINE_BUCKET                = google_storage_bucket.state.name
    SPINE_PERSIST_ON            = var.persist_on
    SPINE_TASKS_LOCATION        = var.region
    SPINE_TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    SPINE_FUNCTION_URLS         = jsonencode(local.function_urls)
  }

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_project_service" "api" {
  for_each = var.enable_apis ? toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ]) : toset([])

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
