################################################################################
# Common DNS module contract (shared with dns_route53 and dns_rfc2136)
################################################################################

variable "zone" {
  description = "Apex of the DNS zone the records belong to, without a trailing dot, in lower case (for example \"example.com\"). Record names in `records` are relative to it."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^([a-z0-9_]([a-z0-9_-]*[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]*[a-z0-9])?$", var.zone))
    error_message = "The zone must be a lower-case domain name without a trailing dot, such as \"example.com\"."
  }
}

variable "records" {
  description = <<-EOT
    Records to write, keyed by a stable id chosen by the caller (the id becomes part of the Terraform state address, so changing it recreates the record).
    `name` is relative to `zone` ("@" for the apex, "_dmarc", "s2026q3._domainkey"); `type` is one of A, AAAA, CNAME, MX, TXT, PTR (the hashicorp/dns provider has no CAA resource); `ttl` is in seconds; `values` holds one entry per resource record.
    MX values are "PREFERENCE EXCHANGE" (for example "10 mx.example.com.").
    TXT values are given raw and unsplit, one string per TXT record, as the hashicorp/dns provider takes them; this module passes them through unchanged.
  EOT
  type = map(object({
    name   = string
    type   = string
    ttl    = number
    values = list(string)
  }))
  nullable = false

  validation {
    condition     = alltrue([for r in values(var.records) : contains(["A", "AAAA", "CNAME", "MX", "TXT", "PTR"], r.type)])
    error_message = "Each record type must be one of: A, AAAA, CNAME, MX, TXT, PTR (CAA cannot be written over RFC 2136 with the hashicorp/dns provider)."
  }

  validation {
    condition     = alltrue([for r in values(var.records) : can(regex("^(@|(\\*|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*)$", r.name))])
    error_message = "Each record name must be \"@\" or a name relative to the zone without a trailing dot, such as \"_dmarc\" or \"s2026q3._domainkey\"."
  }

  validation {
    condition     = alltrue([for r in values(var.records) : length(r.values) > 0 && length(distinct(r.values)) == length(r.values)])
    error_message = "Each record needs at least one value, and its values must be distinct."
  }

  validation {
    condition     = alltrue([for r in values(var.records) : !contains(["CNAME", "PTR"], r.type) || length(r.values) == 1])
    error_message = "A CNAME or PTR record must have exactly one value (the hashicorp/dns provider has no PTR record set)."
  }

  validation {
    condition     = alltrue([for r in values(var.records) : r.type != "CNAME" || r.name != "@"])
    error_message = "A CNAME record cannot be at the zone apex (\"@\")."
  }

  validation {
    condition     = alltrue(flatten([for r in values(var.records) : [for v in r.values : can(regex("^[0-9]{1,5} [^ ]+$", v)) if r.type == "MX"]]))
    error_message = "MX values must have the form \"PREFERENCE EXCHANGE\", such as \"10 mx.example.com.\"."
  }

  validation {
    condition     = alltrue([for r in values(var.records) : r.ttl >= 0 && r.ttl <= 2147483647 && floor(r.ttl) == r.ttl])
    error_message = "Each TTL must be a whole number of seconds from 0 to 2147483647."
  }
}

################################################################################
# RFC 2136 (hashicorp/dns)
#
# The name server, TSIG key and algorithm are set in the calling root module's
# `provider "dns" { update { ... } }` block; this module takes no server settings.
################################################################################
