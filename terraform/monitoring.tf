# Monitoring, behind var.monitoring (default off): the same two containers as
# compose/monitoring.yaml (`make up MONITORING=1`), which module_test.go compares them with.
# Prometheus (alert rules, every part scraped; ingest containers found through Docker DNS) and
# one redis_exporter for the three Redis nodes, both from the sluice/monitoring image.

variable "monitoring" {
  type        = bool
  description = "Also run Prometheus (with the alert rules of monitoring/rules.yml) and redis_exporter, from the sluice/monitoring image; Prometheus is published on bind_address:prometheus_port."
  default     = false
}

variable "prometheus_port" {
  type        = number
  description = "Host port of Prometheus when monitoring = true (container port 9090)."
  default     = 9090

  validation {
    condition     = var.prometheus_port >= 0 && var.prometheus_port <= 65535 && floor(var.prometheus_port) == var.prometheus_port
    error_message = "The prometheus_port must be a whole number from 0 (Docker picks a free port) to 65535."
  }
}

variable "prometheus_retention" {
  type        = string
  description = "How long Prometheus keeps samples (PROMETHEUS_RETENTION, --storage.tsdb.retention.time), e.g. 15d."
  default     = "15d"

  validation {
    condition     = can(regex("^([0-9]+(y|w|d|h|m|s|ms))+$", var.prometheus_retention))
    error_message = "The prometheus_retention must be a Prometheus duration such as 15d or 12h."
  }
}

locals {
  # Every monitoring resource has one instance with monitoring = true, none otherwise.
  monitoring_count = var.monitoring ? 1 : 0
}

resource "docker_image" "monitoring" {
  count        = local.monitoring_count
  name         = "sluice/monitoring:${var.image_tag}"
  keep_locally = true
}

resource "docker_volume" "prometheus" {
  count = local.monitoring_count
  name  = "${var.project_name}-prometheus-data"
}

# ---- redis_exporter: every Redis node through /scrape?target=redis://<node>:<its port>.
resource "docker_container" "redis_exporter" {
  count = local.monitoring_count

  name       = "${var.project_name}-redis-exporter"
  image      = docker_image.monitoring[0].image_id
  command    = ["redis-exporter"]
  env        = ["REDIS_USER=monitoring", "REDIS_PASSWORD=${local.user_passwords["monitoring"]}"]
  restart    = "unless-stopped"
  log_driver = "json-file"
  log_opts   = local.log_opts

  networks_advanced {
    name    = docker_network.sluice.name
    aliases = ["redis-exporter"]
  }

  healthcheck {
    test         = ["CMD", "/usr/local/bin/sluice-monitoring", "healthcheck", "redis-exporter"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "10s"
  }

  wait         = true
  wait_timeout = 60
}

# ---- Prometheus, published on bind_address:prometheus_port.
resource "docker_container" "prometheus" {
  count = local.monitoring_count

  name    = "${var.project_name}-prometheus"
  image   = docker_image.monitoring[0].image_id
  command = ["prometheus"]
  env = [
    "HAPROXY_STATS_USER=${var.haproxy_stats_user}",
    "HAPROXY_STATS_PASSWORD=${var.haproxy_stats_password}",
    "PROMETHEUS_RETENTION=${var.prometheus_retention}",
  ]
  restart    = "unless-stopped"
  log_driver = "json-file"
  log_opts   = local.log_opts

  networks_advanced {
    name    = docker_network.sluice.name
    aliases = ["prometheus"]
  }

  ports {
    internal = 9090
    external = var.prometheus_port
    ip       = var.bind_address
  }

  volumes {
    volume_name    = docker_volume.prometheus[0].name
    container_path = "/prometheus"
  }

  # The scrape configuration and the alert rules, from monitoring/.
  dynamic "upload" {
    for_each = toset(["prometheus.yml", "rules.yml"])
    content {
      file    = "/etc/sluice/monitoring/${upload.value}"
      content = file("${path.module}/../monitoring/${upload.value}")
    }
  }

  healthcheck {
    test         = ["CMD", "/usr/local/bin/sluice-monitoring", "healthcheck", "prometheus"]
    interval     = "3s"
    timeout      = "5s"
    retries      = 3
    start_period = "30s"
  }

  wait         = true
  wait_timeout = 60

  depends_on = [docker_container.redis_exporter]
}

output "prometheus_url" {
  description = "Prometheus (monitoring = true; null otherwise): alerts at /api/v1/alerts, targets at /api/v1/targets. Grafana: import monitoring/dashboard.json."
  value       = var.monitoring ? "http://${var.bind_address}:${var.prometheus_port}/" : null
}
