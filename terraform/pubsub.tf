# Topics and subscriptions of shared/topology.ts. Push subscriptions deliver to the functions with
# an OIDC token of the push invoker; an event function's retries are its subscription's retry and
# dead-letter policies (the functions are not Eventarc-triggered, so these settings stay ours).

resource "google_pubsub_topic" "contact_writes" {
  name                       = "${var.name_prefix}contact-writes"
  project                    = var.project
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_topic" "group_changes" {
  name       = "${var.name_prefix}group-changes"
  project    = var.project
  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letters" {
  name       = "${var.name_prefix}dead-letters"
  project    = var.project
  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letters_final" {
  name       = "${var.name_prefix}dead-letters-final"
  project    = var.project
  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "pending_writes" {
  name                       = "${var.name_prefix}pending-writes"
  project                    = var.project
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_topic" "health" {
  name       = "${var.name_prefix}health"
  project    = var.project
  depends_on = [google_project_service.api]
}

resource "google_pubsub_subscription" "materialize" {
  name                       = "${var.name_prefix}materialize"
  project                    = var.project
  topic                      = google_pubsub_topic.contact_writes.id
  ack_deadline_seconds       = 60
  enable_message_ordering    = true
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters.id
    max_delivery_attempts = 10
  }

  # Never expires.
  expiration_policy {
    ttl = ""
  }

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.function["materialize"].service_config[0].uri}/projects/${var.project}/topics/${google_pubsub_topic.contact_writes.name}"

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}

resource "google_pubsub_subscription" "dead_letter_store" {
  name                       = "${var.name_prefix}dead-letter-store"
  project                    = var.project
  topic                      = google_pubsub_topic.dead_letters.id
  ack_deadline_seconds       = 30
  enable_message_ordering    = false
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters_final.id
    max_delivery_attempts = 20
  }

  expiration_policy {
    ttl = ""
  }

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.function["deadletter"].service_config[0].uri}/projects/${var.project}/topics/${google_pubsub_topic.dead_letters.name}"

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}

# Pulled by nobody: dead letters that could not even be stored wait here for an operator.
resource "google_pubsub_subscription" "dead_letters_hold" {
  name                       = "${var.name_prefix}dead-letters-hold"
  project                    = var.project
  topic                      = google_pubsub_topic.dead_letters_final.id
  ack_deadline_seconds       = 60
  enable_message_ordering    = false
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }
}

# The durable buffer of batched writes, pulled by persist.
resource "google_pubsub_subscription" "pending" {
  name                       = "${var.name_prefix}pending"
  project                    = var.project
  topic                      = google_pubsub_topic.pending_writes.id
  ack_deadline_seconds       = 60
  enable_message_ordering    = false
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "0s"
    maximum_backoff = "0s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters.id
    max_delivery_attempts = 20
  }

  expiration_policy {
    ttl = ""
  }
}
