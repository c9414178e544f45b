# Fixture: the module counterpart of compose.yaml here.
variable "image_tag" {
  type        = string
  description = "Image tag."
}

variable "stats_password" {
  type        = string
  description = "Stats password."
  sensitive   = true
}

variable "bind_address" {
  type        = string
  description = "Host address."
  default     = "127.0.0.1"
}

variable "ingest_replicas" {
  type        = number
  description = "Ingest containers."
  default     = 3
}

locals {
  ingest_env = {
    INGEST_LISTEN       = ":9501"
    INGEST_MIN_REPLICAS = 2
  }
}

resource "docker_network" "net" {
  name = "fixture"
}

resource "docker_image" "ingest" {
  name         = "sluice/ingest:${var.image_tag}"
  keep_locally = true
}

resource "docker_volume" "backups" {
  name = "fixture-backups"
}

resource "docker_container" "ingest" {
  count = var.ingest_replicas
  name  = "fixture-ingest-${count.index + 1}"
  image = docker_image.ingest.image_id
  env   = [for k, v in local.ingest_env : "${k}=${v}"]
  wait  = true
  networks_advanced {
    name    = docker_network.net.name
    aliases = ["ingest"]
  }
  healthcheck {
    test     = ["CMD", "/ingest", "healthcheck"]
    interval = "2s"
    timeout  = "2s"
    retries  = 5
  }
}

resource "docker_container" "haproxy" {
  name       = "fixture-haproxy"
  image      = "sluice/haproxy:${var.image_tag}"
  env        = ["HAPROXY_STATS_PASSWORD=${var.stats_password}"]
  depends_on = [docker_container.ingest]
  networks_advanced {
    name    = docker_network.net.name
    aliases = ["haproxy"]
  }
  ports {
    internal = 9501
    external = 9501
    ip       = var.bind_address
  }
  upload {
    file    = "/usr/local/etc/haproxy/haproxy.cfg"
    content = file("${path.module}/../haproxy.cfg")
  }
  # Drift: the script arrives without its executable bit (mode 0644).
  upload {
    file    = "/usr/local/bin/entrypoint.sh"
    content = file("${path.module}/../entrypoint.sh")
  }
  healthcheck {
    test = ["CMD-SHELL", "true"]
  }
}

resource "docker_container" "backup" {
  name  = "fixture-backup"
  image = "sluice/backup:${var.image_tag}"
  networks_advanced {
    name    = docker_network.net.name
    aliases = ["backup"]
  }
  volumes {
    volume_name    = docker_volume.backups.name
    container_path = "/backups"
  }
  healthcheck {
    test = ["CMD", "/backup", "healthcheck"]
  }
}
