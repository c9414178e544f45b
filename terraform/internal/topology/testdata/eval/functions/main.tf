variable "password" {
  type      = string
  sensitive = true
}

locals {
  cfg = file("${path.module}/app.cfg")
}

output "format" {
  value = format("%s-%d", "a", 3)
}

output "sha256" {
  value = sha256("abc")
}

output "sha256_of_required" {
  value = sha256(var.password)
}

output "file" {
  value = trimspace(local.cfg)
}

output "merge" {
  value = jsonencode(merge({ a = 1 }, { b = 2 }))
}

output "lookup" {
  value = lookup({ a = "x" }, "b", "fallback")
}

output "toset" {
  value = length(toset(["a", "a", "b"]))
}

output "range" {
  value = join(",", [for i in range(3) : tostring(i)])
}

output "sensitive" {
  value = upper(nonsensitive(sensitive("s")))
}

output "concat" {
  value = join(" ", sort(concat(["b"], ["a"], keys({ c = 1 }))))
}
