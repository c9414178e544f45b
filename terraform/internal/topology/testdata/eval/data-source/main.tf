data "docker_network" "outside" {
  name = "bridge"
}

locals {
  net = data.docker_network.outside.name
}
