output "project" {
  description = "GOOGLE_CLOUD_PROJECT for clients."
  value       = var.project
}

output "name_prefix" {
  description = "SPINE_TOPIC_PREFIX for clients."
  value       = var.name_prefix
}

output "bucket" {
  description = "SPINE_BUCKET: the state bucket."
  value       = google_storage_bucket.state.name
}

output "persist_on" {
  description = "SPINE_PERSIST_ON the functions run with; clients use the same."
  value       = var.persist_on
}

output "tasks_location" {
  description = "SPINE_TASKS_LOCATION: where the Cloud Tasks queues are."
  value       = var.region
}

output "topics" {
  description = "Topic names by role."
  value       = local.topic_names
}

output "function_urls" {
  description = "SPINE_FUNCTION_URLS: each function's URL by name."
  value       = { for name, function in google_cloudfunctions2_function.function : name => function.service_config[0].uri }
}

output "client_env" {
  description = "The environment of a client of this deployment (SpineStorage.fromEnv, the spine CLI), one KEY=value per line."
  value = join("\n", [
    "GOOGLE_CLOUD_PROJECT=${var.project}",
    "SPINE_TOPIC_PREFIX=${var.name_prefix}",
    "SPINE_BUCKET=${google_storage_bucket.state.name}",
    "SPINE_PERSIST_ON=${var.persist_on}",
    "SPINE_TASKS_LOCATION=${var.region}",
    "SPINE_FUNCTION_URLS=${jsonencode({ for name, function in google_cloudfunctions2_function.function : name => function.service_config[0].uri })}",
  ])
}

output "cloud_sql_instance" {
  description = "Connection name of the Cloud SQL instance, when cloud_sql_enabled."
  value       = one(google_sql_database_instance.state[*].connection_name)
}

output "gateway_url" {
  description = "URL of the gateway for RemoteStorage({ url, apiKey }); null when var.gateway_image is empty."
  value       = one(google_cloud_run_v2_service.gateway[*].uri)
}
