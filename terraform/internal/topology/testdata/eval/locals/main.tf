# Locals and resource objects refer to each other in both directions: they
# evaluate to a fixed point, whatever the order.
locals {
  full   = "${local.prefix}${docker_network.net.name}"
  prefix = "${var.project}-"
  env    = { A = "1", B = local.prefix }
}

variable "project" {
  type    = string
  default = "p"
}

resource "docker_network" "net" {
  name = "${local.prefix}net"
}

output "full" {
  value = local.full
}

output "env" {
  value = join(",", [for k, v in local.env : "${k}=${v}"])
}

output "id" {
  value = docker_network.net.id
}
