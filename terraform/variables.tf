variable "docker_host" {
  type        = string
  description = "Docker daemon to deploy to: unix:///var/run/docker.sock, or ssh://user@host for a remote machine."
  default     = "unix:///var/run/docker.sock"

  validation {
    condition     = can(regex("^(unix|tcp|ssh)://.+", var.docker_host))
    error_message = "The docker_host must be a unix://, tcp:// or ssh:// URL."
  }
}

variable "docker_ssh_opts" {
  type        = list(string)
  description = "Extra ssh options when docker_host is ssh://, e.g. [\"-o\", \"StrictHostKeyChecking=accept-new\"]."
  default     = []
}

variable "project_name" {
  type        = string
  description = "Prefix of every container, volume and network name (plays the role of the Compose project name)."
  default     = "sluice"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.project_name))
    error_message = "The project_name must be lowercase letters, digits, '-' or '_'."
  }
}

variable "image_tag" {
  type        = string
  description = "Tag of the locally built sluice/* images (make images prints it; it is `git describe --always --dirty`). Images are never pulled: build or load them on the Docker host first."

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "The image_tag must be a Docker tag: letters, digits, '_', '.', '-', at most 128 characters."
  }
}

variable "ingest_replicas" {
  type        = number
  description = "Number of ingest containers behind HAProxy (1 to 10). All share the network alias `ingest`, which HAProxy's server-template resolves, so scaling needs no config edit."
  default     = 3

  validation {
    # 10 = the slot count of `server-template ingest 10` in haproxy/haproxy.cfg: HAProxy
    # would never send traffic to an 11th container (module_test.go keeps the two in step).
    condition     = var.ingest_replicas >= 1 && var.ingest_replicas <= 10 && floor(var.ingest_replicas) == var.ingest_replicas
    error_message = "The ingest_replicas must be a whole number from 1 to 10 (HAProxy's server-template slots)."
  }
}

variable "bind_address" {
  type        = string
  description = "Host address HAProxy's ports are published on. 127.0.0.1 keeps the stack private to the Docker host; 0.0.0.0 exposes it."
  default     = "127.0.0.1"

  validation {
    condition     = can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.bind_address))
    error_message = "The bind_address must be an IPv4 address (127.0.0.1 or 0.0.0.0, say)."
  }
}

variable "ingest_port" {
  type        = number
  description = "Host port of the TCP ingest endpoint with acks (HAProxy frontend, container port 9501)."
  default     = 9501

  validation {
    condition     = var.ingest_port >= 0 && var.ingest_port <= 65535 && floor(var.ingest_port) == var.ingest_port
    error_message = "The ingest_port must be a whole number from 0 (Docker picks a free port) to 65535."
  }
}

variable "http_port" {
  type        = number
  description = "Host port of the HTTP ingest endpoint, POST /v1/messages (HAProxy frontend, container port 9502)."
  default     = 9502

  validation {
    condition     = var.http_port >= 0 && var.http_port <= 65535 && floor(var.http_port) == var.http_port
    error_message = "The http_port must be a whole number from 0 (Docker picks a free port) to 65535."
  }
}

variable "noack_port" {
  type        = number
  description = "Host port of the TCP ingest endpoint for senders that never read acks (HAProxy frontend, container port 9503)."
  default     = 9503

  validation {
    condition     = var.noack_port >= 0 && var.noack_port <= 65535 && floor(var.noack_port) == var.noack_port
    error_message = "The noack_port must be a whole number from 0 (Docker picks a free port) to 65535."
  }
}

variable "stats_port" {
  type        = number
  description = "Host port of HAProxy's stats page and Prometheus exporter (container port 8404, basic auth)."
  default     = 8404

  validation {
    condition     = var.stats_port >= 0 && var.stats_port <= 65535 && floor(var.stats_port) == var.stats_port
    error_message = "The stats_port must be a whole number from 0 (Docker picks a free port) to 65535."
  }
}

variable "redis_password" {
  type        = string
  description = "Password of the Redis admin ACL user (REDIS_PASSWORD); the other users' and the Sentinels' passwords are derived from it (sha256 of it and the user name). No default: pass it with TF_VAR_redis_password or a *.tfvars file kept out of git."
  sensitive   = true

  validation {
    condition     = length(var.redis_password) >= 16
    error_message = "The redis_password must be at least 16 characters."
  }
}

variable "haproxy_stats_password" {
  type        = string
  description = "Basic-auth password of HAProxy's stats page and /metrics (HAPROXY_STATS_PASSWORD). No default: pass it with TF_VAR_haproxy_stats_password."
  sensitive   = true

  validation {
    condition     = length(var.haproxy_stats_password) >= 8
    error_message = "The haproxy_stats_password must be at least 8 characters."
  }
}

variable "haproxy_stats_user" {
  type        = string
  description = "Basic-auth user of HAProxy's stats page and /metrics (HAPROXY_STATS_USER)."
  default     = "admin"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,64}$", var.haproxy_stats_user))
    error_message = "The haproxy_stats_user must be 1 to 64 letters, digits, \".\", \"_\" or \"-\"."
  }
}

variable "ingest_min_replicas" {
  type        = number
  description = "Replicas that must confirm each write (WAIT) before ingest acks it (INGEST_MIN_REPLICAS). 2 = both replicas: acked data survives the loss of the master, but no acks while a replica is down. 1 prefers availability; see RELIABILITY.md."
  default     = 2

  validation {
    condition     = contains([0, 1, 2], var.ingest_min_replicas)
    error_message = "The ingest_min_replicas must be 0, 1 or 2 (there are two replicas)."
  }
}

variable "sentinel_down_after_ms" {
  type        = number
  description = "Milliseconds without an answer before Sentinel considers a node down (SENTINEL_DOWN_AFTER_MS). Must stay above redis_min_replicas_max_lag seconds."
  default     = 5000

  validation {
    condition     = var.sentinel_down_after_ms >= 1000 && floor(var.sentinel_down_after_ms) == var.sentinel_down_after_ms
    error_message = "The sentinel_down_after_ms must be a whole number of milliseconds, at least 1000."
  }
}

variable "sentinel_failover_timeout_ms" {
  type        = number
  description = "Sentinel failover timeout in milliseconds (SENTINEL_FAILOVER_TIMEOUT_MS)."
  default     = 60000

  validation {
    condition     = var.sentinel_failover_timeout_ms >= 1000 && floor(var.sentinel_failover_timeout_ms) == var.sentinel_failover_timeout_ms
    error_message = "The sentinel_failover_timeout_ms must be a whole number of milliseconds, at least 1000."
  }
}

variable "redis_min_replicas_max_lag" {
  type        = number
  description = "Seconds a master accepts writes without a replica ack (min-replicas-max-lag, REDIS_MIN_REPLICAS_MAX_LAG). Kept below sentinel_down_after_ms so a cut-off master stops writing before a replica is promoted."
  default     = 2

  validation {
    condition     = var.redis_min_replicas_max_lag >= 1 && floor(var.redis_min_replicas_max_lag) == var.redis_min_replicas_max_lag
    error_message = "The redis_min_replicas_max_lag must be a whole number of seconds, at least 1."
  }
}

variable "backup_interval" {
  type        = string
  description = "Time between two RDB snapshots taken by the backup service (BACKUP_INTERVAL, a Go duration such as 1h or 30m)."
  default     = "1h"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", var.backup_interval))
    error_message = "The backup_interval must be a Go duration such as 1h or 30m."
  }
}

variable "redis_maxmemory_mb" {
  type        = number
  description = "maxmemory of every Redis node, in MiB (REDIS_MAXMEMORY). With noeviction, writes then fail with OOM and ingest holds producers back instead of the kernel killing the node."
  default     = 1024

  validation {
    condition     = var.redis_maxmemory_mb >= 64 && floor(var.redis_maxmemory_mb) == var.redis_maxmemory_mb
    error_message = "The redis_maxmemory_mb must be a whole number of MiB, at least 64."
  }
}

variable "redis_memory_limit_mb" {
  type        = number
  description = "Memory limit of each Redis container, in MiB; about twice redis_maxmemory_mb (an AOF rewrite or a full sync forks)."
  default     = 2048

  validation {
    condition     = var.redis_memory_limit_mb >= 128 && floor(var.redis_memory_limit_mb) == var.redis_memory_limit_mb
    error_message = "The redis_memory_limit_mb must be a whole number of MiB, at least 128."
  }
}

variable "ingest_memory_limit_mb" {
  type        = number
  description = "Memory limit of each ingest container, in MiB: its budgets (in-flight 16 MiB, read buffers 32 MiB) plus a few KiB per connection."
  default     = 512

  validation {
    condition     = var.ingest_memory_limit_mb >= 128 && floor(var.ingest_memory_limit_mb) == var.ingest_memory_limit_mb
    error_message = "The ingest_memory_limit_mb must be a whole number of MiB, at least 128."
  }
}

variable "ingest_max_queue_len" {
  type        = number
  description = "Bound of data_queue in messages (INGEST_MAX_QUEUE_LEN): at it producers are held back, then get QUEUE_FULL. Keep it well below redis_maxmemory_mb (about 1.5 x bound x average message size); 0 = no bound."
  default     = 1000000

  validation {
    condition     = var.ingest_max_queue_len >= 0 && floor(var.ingest_max_queue_len) == var.ingest_max_queue_len
    error_message = "The ingest_max_queue_len must be a whole number, 0 or more."
  }
}
