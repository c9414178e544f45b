resource "docker_container" "c" {
  name       = "c"
  image      = "sluice/x:1"
  privileged = true

  networks_advanced {
    name    = "net"
    aliases = ["svc"]
  }
}
