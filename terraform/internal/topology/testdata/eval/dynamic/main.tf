variable "ports" {
  type    = map(number)
  default = { "9501" = 19501, "9502" = 19502 }
}

resource "docker_container" "c" {
  name  = "c"
  image = "sluice/x:1"

  networks_advanced {
    name    = "net"
    aliases = ["svc"]
  }

  # The iterator is the label by default.
  dynamic "upload" {
    for_each = toset(["prometheus.yml", "rules.yml"])
    content {
      file    = "/etc/x/${upload.value}"
      content = file("${path.module}/${upload.key}")
    }
  }

  dynamic "ports" {
    for_each = var.ports
    iterator = port
    content {
      internal = port.key
      external = port.value
      ip       = "127.0.0.1"
    }
  }
}
