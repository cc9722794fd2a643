# Optional Cloud SQL for PostgreSQL state store (var.cloud_sql_enabled, off by default): private
# IP only, IAM database authentication, the state functions' service accounts as database users.
# The functions then run with SPINE_STATE_STORE=postgres and reach the instance through a
# Serverless VPC Access connector.

locals {
  # The functions that read or write state log in as themselves.
  sql_functions = { for name, function in local.functions : name => function if var.cloud_sql_enabled && function.uses_state }

  # Cloud SQL names a service account's IAM database user by its email without ".gserviceaccount.com".
  sql_users = { for name, account in google_service_account.function : name => trimsuffix(account.email, ".gserviceaccount.com") }

  postgres_env = {
    for name in keys(local.functions) : name => {
      for key, value in {
        SPINE_STATE_STORE       = "postgres"
        SPINE_POSTGRES_URL      = "postgresql://${urlencode(local.sql_users[name])}@${join("", google_sql_database_instance.state[*].private_ip_address)}:5432/${join("", google_sql_database.state[*].name)}"
        SPINE_POSTGRES_IAM_AUTH = "true"
        # Whichever function migrates first owns the tables and grants the others their rows.
        SPINE_POSTGRES_GRANT_TO = join(",", [for other, user in local.sql_users : user if other != name && contains(keys(local.sql_functions), other)])
      } : key => value if contains(keys(local.sql_functions), name)
    }
  }
}

resource "google_project_service" "sql_api" {
  for_each = var.cloud_sql_enabled && var.enable_apis ? toset([
    "compute.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "vpcaccess.googleapis.com",
  ]) : toset([])

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

data "google_compute_network" "sql" {
  count = var.cloud_sql_enabled ? 1 : 0

  project    = var.project
  name       = var.cloud_sql_network
  depends_on = [google_project_service.sql_api]
}

# Private services access: the range Cloud SQL's private IP comes from.
resource "google_compute_global_address" "sql" {
  count = var.cloud_sql_enabled ? 1 : 0

  project       = var.project
  name          = "${var.name_prefix}sql-range"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = data.google_compute_network.sql[0].id
}

resource "google_service_networking_connection" "sql" {
  count = var.cloud_sql_enabled ? 1 : 0

  network                 = data.google_compute_network.sql[0].id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.sql[0].name]
}

resource "google_vpc_access_connector" "sql" {
  count = var.cloud_sql_enabled ? 1 : 0

  project       = var.project
  name          = "${var.name_prefix}sql"
  region        = var.region
  network       = var.cloud_sql_network
  ip_cidr_range = var.vpc_connector_cidr
  min_instances = 2
  max_instances = 3
  depends_on    = [google_project_service.sql_api]
}

resource "google_sql_database_instance" "state" {
  count = var.cloud_sql_enabled ? 1 : 0

  project             = var.project
  name                = "${var.name_prefix}state"
  region              = var.region
  database_version    = var.cloud_sql_database_version
  deletion_protection = var.cloud_sql_deletion_protection

  settings {
    tier    = var.cloud_sql_tier
    edition = "ENTERPRISE"

    ip_configuration {
      ipv4_enabled    = false
      private_network = data.google_compute_network.sql[0].id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
  }

  depends_on = [google_service_networking_connection.sql]
}

resource "google_sql_database" "state" {
  count = var.cloud_sql_enabled ? 1 : 0

  project  = var.project
  name     = "spine"
  instance = google_sql_database_instance.state[0].name
}

resource "google_sql_user" "function" {
  for_each = local.sql_functions

  project  = var.project
  instance = google_sql_database_instance.state[0].name
  name     = local.sql_users[each.key]
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

resource "google_project_iam_member" "sql_client" {
  for_each = local.sql_functions

  project = var.project
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_project_iam_member" "sql_instance_user" {
  for_each = local.sql_functions

  project = var.project
  role    = "roles/cloudsql.instanceUser"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}
