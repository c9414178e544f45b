output "ingest_endpoint" {
  description = "Where clients send (TCP with acks): the virtual IP when set, else HAProxy on a (then also list b's, see haproxy_endpoints)."
  value       = "${var.vip != "" ? var.vip : var.addresses.a}:${var.ingest_port}"
}

output "haproxy_endpoints" {
  description = "Each HAProxy's endpoints (ingest, http, noack, stats), by domain."
  value = {
    a = module.a.haproxy_endpoints
    b = module.b.haproxy_endpoints
  }
}

output "redis_endpoints" {
  description = "Redis node of each domain (address:port)."
  value       = { a = module.a.redis_endpoint, b = module.b.redis_endpoint, c = module.c.redis_endpoint }
}

output "sentinel_endpoints" {
  description = "Sentinel of each domain (address:port); ask any for the master of \"sluice\"."
  value       = { a = module.a.sentinel_endpoint, b = module.b.sentinel_endpoint, c = module.c.sentinel_endpoint }
}

output "ingest_endpoints" {
  description = "Every ingest container (address:port of its TCP listener), by domain."
  value       = { a = module.a.ingest_endpoints, b = module.b.ingest_endpoints, c = module.c.ingest_endpoints }
}

output "ingest_admin_endpoints" {
  description = "Every ingest container's admin listener (/ready, /metrics), by domain."
  value       = { a = module.a.ingest_admin_endpoints, b = module.b.ingest_admin_endpoints, c = module.c.ingest_admin_endpoints }
}
