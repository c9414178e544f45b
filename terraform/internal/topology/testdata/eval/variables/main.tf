variable "name" {
  type    = string
  default = "sluice"
}

variable "replicas" {
  type    = number
  default = 2
}

# No default: a "<var.password>" placeholder unless a value is passed.
variable "password" {
  type      = string
  sensitive = true
}

output "name" {
  value = var.name
}

output "replicas" {
  value = var.replicas
}

output "password" {
  value = var.password
}
