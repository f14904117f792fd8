################################################################################
# Common IP module contract (shared by all ip_* modules)
################################################################################

variable "ips" {
  description = <<-EOT
    Sending IP addresses, keyed by a stable IP id chosen by the caller (the id becomes part of the Terraform state address, so changing it recreates the IP).
    `pool` is the IP pool the address belongs to; `host` is the name of the host (server) that uses it; `ptr` is the reverse DNS name, a fully qualified host name without trailing dot (for example "mta1.example.com").
    `address` is the IP address when it already exists (static or existing addresses); leave it null to have this module allocate an IPv4 address, where the provider supports that (ip_ovh does not: every IP needs an address from `ip_block`).
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
    condition     = alltrue([for ip in values(var.ips) : length(ip.pool) > 0 && length(ip.host) > 0])
    error_message = "Each IP needs a non-empty pool and host."
  }
}

variable "forward_records" {
  description = "Forward DNS records that must exist before reverse DNS is set, as a map of any id to FQDN: normally the `fqdns` output of the DNS module that writes the A records for these addresses. It only orders operations (some providers refuse or retry a PTR whose name does not resolve to the address). Do not use a module-level `depends_on` instead: the A records need the addresses from this module, so that would be a cycle."
  type        = map(string)
  default     = {}
  nullable    = false
}

################################################################################
# OVHcloud
################################################################################

variable "ip_block" {
  description = "The OVHcloud IP block (CIDR, for example \"203.0.113.0/28\") that every address in `ips` belongs to. The block must already be routed to the hosts; this module only sets reverse DNS."
  type        = string
  nullable    = false

  validation {
    condition     = can(cidrhost(var.ip_block, 0)) && strcontains(var.ip_block, "/")
    error_message = "The ip_block must be an IPv4 or IPv6 block in CIDR notation, such as \"203.0.113.0/28\"."
  }
}

variable "readiness_timeout" {
  description = "How long the provider retries (every 5 seconds) while OVHcloud cannot yet verify that the PTR name resolves to the address, as a Go duration such as \"2m\". Null keeps the provider default (60s)."
  type        = string
  default     = null

  validation {
    condition     = var.readiness_timeout == null || can(regex("^([0-9]+(ms|s|m|h))+$", coalesce(var.readiness_timeout, "0s")))
    error_message = "The readiness_timeout must be null or a duration such as \"90s\", \"2m\" or \"1h30m\" (units: ms, s, m, h)."
  }
}
