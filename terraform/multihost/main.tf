locals {
  addresses = [var.addresses.a, var.addresses.b, var.addresses.c]
}

# Domain a: the first-boot master and the primary HAProxy (it holds the virtual IP).
module "a" {
  source    = "../modules/node"
  providers = { docker = docker.a }

  domain                 = "a"
  project_name           = var.project_name
  image_tag              = var.image_tag
  address                = var.addresses.a
  addresses              = local.addresses
  initial_master         = var.addresses.a
  redis_port             = var.redis_port
  sentinel_port          = var.sentinel_port
  ingest_replicas        = var.ingest_replicas
  ingest_port            = var.ingest_port
  sentinel_down_after_ms = var.sentinel_down_after_ms
  redis_password         = var.redis_password
  haproxy_stats_password = var.haproxy_stats_password
  haproxy                = true
  vip                    = var.vip
  vip_interface          = var.vip_interface
  vrrp_priority          = 150
  vrrp_peer              = var.addresses.b
}

# Domain b: a replica and the backup HAProxy.
module "b" {
  source    = "../modules/node"
  providers = { docker = docker.b }

  domain                 = "b"
  project_name           = var.project_name
  image_tag              = var.image_tag
  address                = var.addresses.b
  addresses              = local.addresses
  initial_master         = var.addresses.a
  redis_port             = var.redis_port
  sentinel_port          = var.sentinel_port
  ingest_replicas        = var.ingest_replicas
  ingest_port            = var.ingest_port
  sentinel_down_after_ms = var.sentinel_down_after_ms
  redis_password         = var.redis_password
  haproxy_stats_password = var.haproxy_stats_password
  haproxy                = true
  vip                    = var.vip
  vip_interface          = var.vip_interface
  vrrp_priority          = 100
  vrrp_peer              = var.addresses.a
}

# Domain c: a replica, no HAProxy.
module "c" {
  source    = "../modules/node"
  providers = { docker = docker.c }

  domain                 = "c"
  project_name           = var.project_name
  image_tag              = var.image_tag
  address                = var.addresses.c
  addresses              = local.addresses
  initial_master         = var.addresses.a
  redis_port             = var.redis_port
  sentinel_port          = var.sentinel_port
  ingest_replicas        = var.ingest_replicas
  sentinel_down_after_ms = var.sentinel_down_after_ms
  redis_password         = var.redis_password
  haproxy_stats_password = var.haproxy_stats_password
}
