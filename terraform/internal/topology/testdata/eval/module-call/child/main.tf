variable "port" {
  type = number
  validation {
    condition     = var.port >= 1 && var.port <= 65535
    error_message = "bad port"
  }
}

variable "caps" {
  type    = bool
  default = false
}

locals {
  rendered = templatefile("${path.module}/app.tftpl", { ports = [var.port, var.port + 1] })
}

resource "docker_container" "svc" {
  name         = "svc"
  image        = "img"
  network_mode = "host"
  dynamic "capabilities" {
    for_each = var.caps ? [1] : []
    content {
      add = ["NET_ADMIN"]
    }
  }
  upload {
    file    = "/app.cfg"
    content = templatefile("${path.module}/app.tftpl", { ports = [var.port] })
  }
}

output "endpoint" {
  value = "10.0.0.1:${var.port}"
}

output "rendered" {
  value = trimspace(local.rendered)
}
