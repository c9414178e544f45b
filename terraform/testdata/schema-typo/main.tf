# Fixture: arguments the docker provider 3.x does not have.
provider "docker" {
  host = "unix:///var/run/docker.sock"
  ssh  = true
}

resource "docker_container" "c" {
  name        = "c"
  image       = "sluice/ingest:dev"
  stop_timout = 30

  healthcheck {
    test           = ["CMD", "true"]
    start_interval = "1s"
  }

  network {
    name = "x"
  }
}

resource "docker_service" "s" {
  name = "s"
}
