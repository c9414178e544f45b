output "ingest_endpoint" {
  description = "host:port clients stream newline-delimited messages to (HAProxy, TCP)."
  value       = "${var.bind_address}:${var.ingest_port}"
}

output "http_endpoint" {
  description = "URL producers POST newline-delimited messages to (HAProxy, HTTP); 200 once stored and replicated."
  value       = "http://${var.bind_address}:${var.http_port}/v1/messages"
}

output "noack_endpoint" {
  description = "host:port for senders that never read acks (syslog-ng network(), nc): the server writes nothing back."
  value       = "${var.bind_address}:${var.noack_port}"
}

output "stats_url" {
  description = "HAProxy stats page (basic auth: haproxy_stats_user / haproxy_stats_password); Prometheus metrics are at /metrics on the same port."
  value       = "http://${var.bind_address}:${var.stats_port}/stats"
}
