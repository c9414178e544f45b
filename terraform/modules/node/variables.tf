variable "domain" {
  type        = string
  description = "Name of this failure domain (a, b, c): part of every container, volume and ingest server name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,7}$", var.domain))
    error_message = "The domain must be a lowercase letter followed by at most 7 letters or digits."
  }
}

variable "project_name" {
  type        = string
  description = "Prefix of every container and volume name."
  default     = "sluice"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.project_name))
    error_message = "The project_name must be lowercase letters, digits, '-' or '_'."
  }
}

variable "image_tag" {
  type        = string
  description = "Tag of the locally built sluice/* images (make images); load them on this host first, nothing is pulled."

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "The image_tag must be a Docker tag: letters, digits, '_', '.', '-', at most 128 characters."
  }
}

variable "address" {
  type        = string
  description = "IPv4 address of this host that the other hosts and the clients reach: Redis announces it (replica-announce-ip), the Sentinel announces it (announce-ip), HAProxy's server lines use it."

  validation {
    condition     = can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.address))
    error_message = "The address must be an IPv4 address such as 10.0.1.11."
  }
}

variable "addresses" {
  type        = list(string)
  description = "IPv4 addresses of every domain's host, this one included, in the same order in every domain: the Sentinel list and HAProxy's servers."

  validation {
    condition     = length(var.addresses) >= 3 && length(distinct(var.addresses)) == length(var.addresses) && alltrue([for a in var.addresses : can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", a))])
    error_message = "The addresses must be at least three distinct IPv4 addresses."
  }
}

variable "initial_master" {
  type        = string
  description = "Address of the Redis node that is master on the first boot of the whole topology (REDIS_INITIAL_MASTER); afterwards the Sentinels decide."

  validation {
    condition     = can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.initial_master))
    error_message = "The initial_master must be an IPv4 address (one of addresses)."
  }
}

variable "redis_port" {
  type        = number
  description = "Port of the Redis node on this host (host networking), the same on every host."
  default     = 6379

  validation {
    condition     = var.redis_port >= 1 && var.redis_port <= 65535 && floor(var.redis_port) == var.redis_port
    error_message = "The redis_port must be a whole number from 1 to 65535."
  }
}

variable "sentinel_port" {
  type        = number
  description = "Port of the Sentinel on this host, the same on every host."
  default     = 26379

  validation {
    condition     = var.sentinel_port >= 1 && var.sentinel_port <= 65535 && floor(var.sentinel_port) == var.sentinel_port
    error_message = "The sentinel_port must be a whole number from 1 to 65535."
  }
}

variable "ingest_replicas" {
  type        = number
  description = "Ingest containers on each host (1 to 10)."
  default     = 2

  validation {
    condition     = var.ingest_replicas >= 1 && var.ingest_replicas <= 10 && floor(var.ingest_replicas) == var.ingest_replicas
    error_message = "The ingest_replicas must be a whole number from 1 to 10."
  }
}

variable "ingest_port_base" {
  type        = number
  description = "First port of the ingest containers (host networking): container i (from 0) listens on base+10i (TCP with acks), +1 (HTTP), +2 (TCP without acks), +3 (admin: /ready, /metrics)."
  default     = 9600

  validation {
    condition     = var.ingest_port_base >= 1024 && var.ingest_port_base <= 65435 && floor(var.ingest_port_base) == var.ingest_port_base
    error_message = "The ingest_port_base must be a whole number from 1024 to 65435 (room for 10 containers)."
  }
}

variable "haproxy" {
  type        = bool
  description = "Run an HAProxy on this host (domains a and b in terraform/multihost)."
  default     = false
}

variable "ingest_port" {
  type        = number
  description = "HAProxy's TCP endpoint with acks on this host."
  default     = 9501

  validation {
    condition     = var.ingest_port >= 1 && var.ingest_port <= 65535 && floor(var.ingest_port) == var.ingest_port
    error_message = "The ingest_port must be a whole number from 1 to 65535."
  }
}

variable "http_port" {
  type        = number
  description = "HAProxy's HTTP endpoint (POST /v1/messages) on this host."
  default     = 9502

  validation {
    condition     = var.http_port >= 1 && var.http_port <= 65535 && floor(var.http_port) == var.http_port
    error_message = "The http_port must be a whole number from 1 to 65535."
  }
}

variable "noack_port" {
  type        = number
  description = "HAProxy's TCP endpoint without acks on this host."
  default     = 9503

  validation {
    condition     = var.noack_port >= 1 && var.noack_port <= 65535 && floor(var.noack_port) == var.noack_port
    error_message = "The noack_port must be a whole number from 1 to 65535."
  }
}

variable "stats_port" {
  type        = number
  description = "HAProxy's stats page and Prometheus exporter on this host (basic auth)."
  default     = 8404

  validation {
    condition     = var.stats_port >= 1 && var.stats_port <= 65535 && floor(var.stats_port) == var.stats_port
    error_message = "The stats_port must be a whole number from 1 to 65535."
  }
}

variable "vip" {
  type        = string
  description = "Virtual IPv4 address the HAProxy pair shares through keepalived (VRRP, unicast peers); \"\" runs HAProxy without keepalived."
  default     = ""

  validation {
    condition     = var.vip == "" || can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.vip))
    error_message = "The vip must be \"\" or an IPv4 address."
  }
}

variable "vip_interface" {
  type        = string
  description = "Host network interface keepalived puts the virtual IP on."
  default     = "eth0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.@-]{1,15}$", var.vip_interface))
    error_message = "The vip_interface must be a network interface name (at most 15 characters)."
  }
}

variable "vrrp_priority" {
  type        = number
  description = "keepalived priority: the highest live one holds the virtual IP (primary 150, backup 100)."
  default     = 100

  validation {
    condition     = var.vrrp_priority >= 1 && var.vrrp_priority <= 254 && floor(var.vrrp_priority) == var.vrrp_priority
    error_message = "The vrrp_priority must be a whole number from 1 to 254."
  }
}

variable "vrrp_peer" {
  type        = string
  description = "Address of the other HAProxy host (keepalived unicast_peer); required with vip."
  default     = ""

  validation {
    condition     = var.vrrp_peer == "" || can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.vrrp_peer))
    error_message = "The vrrp_peer must be \"\" or an IPv4 address."
  }
}

variable "vrrp_router_id" {
  type        = number
  description = "VRRP virtual_router_id shared by the pair, unique on the network segment."
  default     = 51

  validation {
    condition     = var.vrrp_router_id >= 1 && var.vrrp_router_id <= 255 && floor(var.vrrp_router_id) == var.vrrp_router_id
    error_message = "The vrrp_router_id must be a whole number from 1 to 255."
  }
}

variable "redis_password" {
  type        = string
  description = "Password of the Redis admin user; the other users' and the Sentinels' passwords derive from it (as in the single-host module)."
  sensitive   = true

  validation {
    condition     = length(var.redis_password) >= 16
    error_message = "The redis_password must be at least 16 characters."
  }
}

variable "haproxy_stats_password" {
  type        = string
  description = "Basic-auth password of HAProxy's stats page and /metrics."
  sensitive   = true

  validation {
    condition     = length(var.haproxy_stats_password) >= 8
    error_message = "The haproxy_stats_password must be at least 8 characters."
  }
}

variable "ingest_min_replicas" {
  type        = number
  description = "Replicas that must confirm each write (WAIT) before ingest acks it (INGEST_MIN_REPLICAS)."
  default     = 2

  validation {
    condition     = contains([0, 1, 2], var.ingest_min_replicas)
    error_message = "The ingest_min_replicas must be 0, 1 or 2."
  }
}

variable "sentinel_down_after_ms" {
  type        = number
  description = "Milliseconds without an answer before a Sentinel considers a node down; above redis_min_replicas_max_lag seconds."
  default     = 5000

  validation {
    condition     = var.sentinel_down_after_ms >= 1000 && floor(var.sentinel_down_after_ms) == var.sentinel_down_after_ms
    error_message = "The sentinel_down_after_ms must be a whole number of milliseconds, at least 1000."
  }
}

variable "sentinel_failover_timeout_ms" {
  type        = number
  description = "Sentinel failover timeout in milliseconds."
  default     = 60000

  validation {
    condition     = var.sentinel_failover_timeout_ms >= 1000 && floor(var.sentinel_failover_timeout_ms) == var.sentinel_failover_timeout_ms
    error_message = "The sentinel_failover_timeout_ms must be a whole number of milliseconds, at least 1000."
  }
}

variable "redis_min_replicas_max_lag" {
  type        = number
  description = "Seconds a master accepts writes without a replica ack (min-replicas-max-lag)."
  default     = 2

  validation {
    condition     = var.redis_min_replicas_max_lag >= 1 && floor(var.redis_min_replicas_max_lag) == var.redis_min_replicas_max_lag
    error_message = "The redis_min_replicas_max_lag must be a whole number of seconds, at least 1."
  }
}

variable "ingest_drain_delay" {
  type        = string
  description = "How long a stopping ingest container stays up after its readiness drops (INGEST_DRAIN_DELAY, a Go duration); longer than HAProxy's fall x inter (2 s)."
  default     = "3s"

  validation {
    condition     = can(regex("^[0-9]+(ms|s|m)$", var.ingest_drain_delay))
    error_message = "The ingest_drain_delay must be a duration such as 3s or 500ms."
  }
}
