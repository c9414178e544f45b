resource "docker_container" "c" {
  name  = "c"
  image = "sluice/x:1"

  networks_advanced {
    name    = "net"
    aliases = ["svc"]
  }

  dynamic "upload" {
    for_each = ["a"]
    file     = "/etc/a"
  }
}
