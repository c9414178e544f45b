# Fixture: a container argument and a block the comparison does not know.
resource "docker_container" "ingest" {
  name        = "ingest"
  image       = "sluice/ingest:dev"
  memory_swap = 256

  networks_advanced {
    name    = "net"
    aliases = ["ingest"]
  }

  ulimit {
    name = "nofile"
    soft = 65536
    hard = 65536
  }
}
