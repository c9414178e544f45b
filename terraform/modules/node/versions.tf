# One failure domain of sluice: a Docker host running one Redis node, one Sentinel, some
# ingest containers and optionally an HAProxy (with keepalived when a virtual IP is set).
# The caller configures the provider (terraform/multihost passes docker.a, docker.b,
# docker.c); this module configures none.
terraform {
  required_version = ">= 1.3"

  required_providers {
    docker = {
      source  = "kreuzwerker/docker"
      version = "~> 3.0"
    }
  }
}
