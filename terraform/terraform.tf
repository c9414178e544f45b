terraform {
  # optional() attributes and the validation blocks below need Terraform 1.3.
  required_version = ">= 1.3"

  required_providers {
    docker = {
      source  = "kreuzwerker/docker"
      version = "~> 3.0"
    }
  }
}

# The Docker daemon to deploy to: the local socket, or ssh://user@host for a
# remote machine (the provider runs `docker system dial-stdio` over ssh, so the
# remote user needs access to the Docker socket there).
provider "docker" {
  host     = var.docker_host
  ssh_opts = var.docker_ssh_opts
}
