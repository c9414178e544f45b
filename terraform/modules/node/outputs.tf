output "redis_endpoint" {
  description = "address:port of this domain's Redis node."
  value       = "${var.address}:${var.redis_port}"
}

output "sentinel_endpoint" {
  description = "address:port of this domain's Sentinel."
  value       = "${var.address}:${var.sentinel_port}"
}

output "ingest_endpoints" {
  description = "address:port (TCP with acks) of each ingest container on this host, behind HAProxy."
  value       = [for p in local.ingest_ports : "${var.address}:${p.ack}"]
}

output "ingest_admin_endpoints" {
  description = "address:port of each ingest container's admin listener (/ready, /metrics)."
  value       = [for p in local.ingest_ports : "${var.address}:${p.admin}"]
}

output "haproxy_endpoints" {
  description = "This host's HAProxy endpoints (empty without HAProxy): ingest (TCP with acks), http, noack, stats."
  value = var.haproxy ? {
    ingest = "${var.address}:${var.ingest_port}"
    http   = "http://${var.address}:${var.http_port}/v1/messages"
    noack  = "${var.address}:${var.noack_port}"
    stats  = "http://${var.address}:${var.stats_port}/stats"
  } : {}
}
