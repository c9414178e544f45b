# Fixture: variables that break the house rules, one way each.
variable "replicas" {
  default = 3
}

variable "port" {
  type        = number
  description = " "
}

variable "db_password" {
  type        = string
  description = "A password that must not have a default."
  default     = "hunter2"
}

variable "documented" {
  type        = string
  description = "The only correct one."
}
