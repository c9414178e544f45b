# A number without a default is not known before apply.
variable "replicas" {
  type = number
}

resource "docker_container" "c" {
  count = var.replicas
  name  = "c-${count.index}"
  image = "sluice/x:1"

  networks_advanced {
    name    = "net"
    aliases = ["svc"]
  }
}
