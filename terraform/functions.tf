# The Cloud Functions (2nd gen) of shared/topology.ts, all from one archive: each picks its target
# with entry_point. None is public: every caller needs roles/run.invoker (see iam.tf).

resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project
  account_id   = "${var.name_prefix}${each.key}"
  display_name = "Super Spine function ${each.key}"
  depends_on   = [google_project_service.api]
}

# Builds the functions' images from the uploaded archive.
resource "google_service_account" "build" {
  project      = var.project
  account_id   = "${var.name_prefix}fn-build"
  display_name = "Super Spine functions build"
  depends_on   = [google_project_service.api]
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  name     = "${var.name_prefix}${each.key}"
  project  = var.project
  location = var.region

  build_config {
    runtime         = var.nodejs_runtime
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.functions_source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = "${each.value.memory_mb}M"
    timeout_seconds                = each.value.timeout_seconds
    min_instance_count             = each.value.min_instances
    max_instance_count             = each.value.max_instances
    ingress_settings               = each.value.ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function[each.key].email
    environment_variables          = merge(local.function_env, local.postgres_env[each.key])
    # Cloud SQL's private IP is reached through the connector; everything else goes out directly.
    vpc_connector                 = each.value.uses_state ? one(google_vpc_access_connector.sql[*].id) : null
    vpc_connector_egress_settings = each.value.uses_state && var.cloud_sql_enabled ? "PRIVATE_RANGES_ONLY" : null
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
  ]
}
