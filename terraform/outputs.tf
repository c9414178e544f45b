output "ingest_endpoint" {
  description = "host:port clients stream newline-delimited messages to (HAProxy, TCP)."
  value       = "${var.bind_address}:${var.ingest_port}"
}

output "stats_url" {
  description = "HAProxy stats page (basic auth: haproxy_stats_user / haproxy_stats_password); Prometheus metrics are at /metrics on the same port."
  value       = "http://${var.bind_address}:${var.stats_port}/stats"
}
