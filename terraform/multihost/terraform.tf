# sluice across three failure domains (a, b, c), one Docker host each. Provider
# configuration lives here, in the root: modules/node configures none and gets its host
# through providers = { docker = docker.X }.
terraform {
  required_version = ">= 1.3"

  required_providers {
    docker = {
      source  = "kreuzwerker/docker"
      version = "~> 3.0"
    }
  }
}

provider "docker" {
  alias    = "a"
  host     = var.docker_hosts.a
  ssh_opts = var.docker_ssh_opts
}

provider "docker" {
  alias    = "b"
  host     = var.docker_hosts.b
  ssh_opts = var.docker_ssh_opts
}

provider "docker" {
  alias    = "c"
  host     = var.docker_hosts.c
  ssh_opts = var.docker_ssh_opts
}
