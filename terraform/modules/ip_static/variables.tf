################################################################################
# Common IP module contract (shared by all ip_* modules)
################################################################################

variable "ips" {
  description = <<-EOT
    Sending IP addresses, keyed by a stable IP id chosen by the caller (the id becomes part of the Terraform state address, so changing it recreates the IP).
    `pool` is the IP pool the address belongs to; `host` is the name of the host (server) that uses it; `ptr` is the reverse DNS name, a fully qualified host name without trailing dot (for example "mta1.example.com").
    `address` is the IP address when it already exists (static or existing addresses); it is required here: ip_static allocates nothing.
  EOT
  type = map(object({
    pool    = string
    host    = string
    ptr     = string
    address = optional(string)
  }))
  nullable = false

  validation {
    condition     = alltrue([for ip in values(var.ips) : can(regex("^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$", ip.ptr))])
    error_message = "Each ptr must be a fully qualified host name without a trailing dot, such as \"mta1.example.com\"."
  }

  validation {
    condition     = alltrue([for ip in values(var.ips) : ip.address == null || can(cidrhost("${coalesce(ip.address, "0.0.0.0")}/${strcontains(coalesce(ip.address, "0.0.0.0"), ":") ? 128 : 32}", 0))])
    error_message = "Each address must be null or a single IPv4 or IPv6 address without a prefix length, such as \"203.0.113.10\"."
  }

  validation {
    condition     = alltrue([for ip in values(var.ips) : ip.address != null])
    error_message = "Each IP needs an address: ip_static cannot allocate addresses."
  }

  validation {
    condition     = alltrue([for ip in values(var.ips) : length(ip.pool) > 0 && length(ip.host) > 0])
    error_message = "Each IP needs a non-empty pool and host."
  }
}

variable "forward_records" {
  description = "Accepted so that every ip_* module takes the same inputs. ip_static sets no reverse DNS, so nothing is ordered by it; send `ptr_requests` to the provider once these forward records exist."
  type        = map(string)
  default     = {}
  nullable    = false
}
