locals {
  started = timestamp()
}
