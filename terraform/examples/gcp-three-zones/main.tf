# sluice on three Google Cloud VMs in three zones of one region: cloud-init installs Docker,
# the VMs' internal addresses feed terraform/modules/node (once per VM, as terraform/multihost
# does), whose Docker providers reach each VM over ssh. Small on purpose: the tests cover the module it calls, not this example.
#
# Two applies, because a provider cannot be configured from resources of the same run:
#   terraform apply -target=google_compute_instance.node   # the VMs (Docker via cloud-init)
#   make images && for ip in $(terraform output -json public_ips | jq -r '.[]'); do
#     docker save sluice/redis:TAG sluice/ingest:TAG sluice/haproxy:TAG | ssh admin@$ip docker load; done
#   terraform apply                                         # the stack on them
# Google Cloud forbids gratuitous-ARP virtual IPs: no vip here; clients use the internal
# TCP load balancer (google_compute_forwarding_rule, not shown) or DNS with both HAProxy
# addresses (see the README, "Across three hosts").
terraform {
  required_version = ">= 1.3"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 5.0"
    }
    docker = {
      source  = "kreuzwerker/docker"
      version = "~> 3.0"
    }
  }
}

variable "project" {
  type        = string
  description = "Google Cloud project id."
}

variable "region" {
  type        = string
  description = "Region whose zones -b, -c and -d hold the three VMs (those of europe-west1; adjust local.domains elsewhere)."
  default     = "europe-west1"
}

variable "ssh_user" {
  type        = string
  description = "User the Docker providers ssh in as (in the docker group through cloud-init)."
  default     = "admin"
}

variable "ssh_public_key" {
  type        = string
  description = "Public key installed for ssh_user."
}

variable "image_tag" {
  type        = string
  description = "Tag of the sluice/* images loaded on every VM."
}

variable "redis_password" {
  type        = string
  description = "Redis admin password (TF_VAR_redis_password)."
  sensitive   = true
}

variable "haproxy_stats_password" {
  type        = string
  description = "HAProxy stats password (TF_VAR_haproxy_stats_password)."
  sensitive   = true
}

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  domains = { a = "${var.region}-b", b = "${var.region}-c", c = "${var.region}-d" }
  # Debian 12 with Docker from Debian's archive; the ssh user may use the Docker socket.
  cloud_init = <<-EOT
    #cloud-config
    packages: [docker.io]
    users:
      - name: ${var.ssh_user}
        groups: [docker]
        ssh_authorized_keys: ["${var.ssh_public_key}"]
    runcmd: [[systemctl, enable, --now, docker]]
  EOT
}

resource "google_compute_instance" "node" {
  for_each     = local.domains
  name         = "sluice-${each.key}"
  zone         = each.value
  machine_type = "e2-standard-2"

  boot_disk {
    initialize_params {
      image = "debian-cloud/debian-12"
      size  = 30
    }
  }

  network_interface {
    network = "default"
    access_config {}
  }

  metadata = { user-data = local.cloud_init }
}

# One Docker provider per VM (configured here, in the example: modules/node configures none).
locals {
  public = { for d, vm in google_compute_instance.node : d => vm.network_interface[0].access_config[0].nat_ip }
  inner  = { for d, vm in google_compute_instance.node : d => vm.network_interface[0].network_ip }
  shared = {
    project_name           = "sluice"
    image_tag              = var.image_tag
    addresses              = [local.inner.a, local.inner.b, local.inner.c]
    initial_master         = local.inner.a
    redis_password         = var.redis_password
    haproxy_stats_password = var.haproxy_stats_password
  }
}

provider "docker" {
  alias = "a"
  host  = "ssh://${var.ssh_user}@${local.public.a}"
}

provider "docker" {
  alias = "b"
  host  = "ssh://${var.ssh_user}@${local.public.b}"
}

provider "docker" {
  alias = "c"
  host  = "ssh://${var.ssh_user}@${local.public.c}"
}

module "a" {
  source    = "../../modules/node"
  providers = { docker = docker.a }

  domain                 = "a"
  address                = local.inner.a
  haproxy                = true
  project_name           = local.shared.project_name
  image_tag              = local.shared.image_tag
  addresses              = local.shared.addresses
  initial_master         = local.shared.initial_master
  redis_password         = local.shared.redis_password
  haproxy_stats_password = local.shared.haproxy_stats_password
}

module "b" {
  source    = "../../modules/node"
  providers = { docker = docker.b }

  domain                 = "b"
  address                = local.inner.b
  haproxy                = true
  project_name           = local.shared.project_name
  image_tag              = local.shared.image_tag
  addresses              = local.shared.addresses
  initial_master         = local.shared.initial_master
  redis_password         = local.shared.redis_password
  haproxy_stats_password = local.shared.haproxy_stats_password
}

module "c" {
  source    = "../../modules/node"
  providers = { docker = docker.c }

  domain                 = "c"
  address                = local.inner.c
  project_name           = local.shared.project_name
  image_tag              = local.shared.image_tag
  addresses              = local.shared.addresses
  initial_master         = local.shared.initial_master
  redis_password         = local.shared.redis_password
  haproxy_stats_password = local.shared.haproxy_stats_password
}

output "public_ips" {
  description = "The VMs' public addresses (ssh, docker load)."
  value       = [for vm in google_compute_instance.node : vm.network_interface[0].access_config[0].nat_ip]
}

output "ingest_endpoints" {
  description = "HAProxy on a and b (TCP with acks): put both behind the internal load balancer or in DNS."
  value       = [module.a.haproxy_endpoints.ingest, module.b.haproxy_endpoints.ingest]
}
