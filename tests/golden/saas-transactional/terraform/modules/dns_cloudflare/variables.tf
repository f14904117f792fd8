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
    `name` is relative to `zone` ("@" for the apex, "_dmarc", "s2026q3._domainkey"); `type` is one of A, AAAA, CNAME, MX, TXT, PTR, CAA; `ttl` is in seconds (1 means "automatic" at Cloudflare); `values` holds one entry per resource record.
    MX values are "PREFERENCE EXCHANGE" (for example "10 mx.example.com."). CAA values are "FLAGS TAG \"VALUE\"" (for example "0 issue \"letsencrypt.org\"").
    TXT values must already be rendered for Cloudflare: a long value is given as quoted 255-character chunks ("\"abc...\" \"def...\""); this module passes them through unchanged.
  EOT
  type = map(object({
    name   = string
    type   = string
    ttl    = number
    values = list(string)
  }))
  nullable = false

  validation {
    condition     = alltrue([for r in values(var.records) : contains(["A", "AAAA", "CNAME", "MX", "TXT", "PTR", "CAA"], r.type)])
    error_message = "Each record type must be one of: A, AAAA, CNAME, MX, TXT, PTR, CAA."
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
    condition     = alltrue([for r in values(var.records) : r.type != "CNAME" || length(r.values) == 1])
    error_message = "A CNAME record must have exactly one value."
  }

  validation {
    condition     = alltrue(flatten([for r in values(var.records) : [for v in r.values : can(regex("^[0-9]{1,5} [^ ]+$", v)) if r.type == "MX"]]))
    error_message = "MX values must have the form \"PREFERENCE EXCHANGE\", such as \"10 mx.example.com.\"."
  }

  validation {
    condition     = alltrue(flatten([for r in values(var.records) : [for v in r.values : can(regex("^[0-9]{1,3} [A-Za-z0-9]+ \".*\"$", v)) if r.type == "CAA"]]))
    error_message = "CAA values must have the form FLAGS TAG \"VALUE\", such as 0 issue \"letsencrypt.org\"."
  }

  validation {
    condition     = alltrue([for r in values(var.records) : r.ttl == 1 || (r.ttl >= 30 && r.ttl <= 86400 && floor(r.ttl) == r.ttl)])
    error_message = "Each TTL must be 1 (automatic) or a whole number of seconds from 30 to 86400, as Cloudflare accepts."
  }
}

################################################################################
# Cloudflare
################################################################################

variable "zone_id" {
  description = "Cloudflare zone id (32 hexadecimal characters) of `zone`."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.zone_id))
    error_message = "The zone_id must be 32 lower-case hexadecimal characters, as shown in the Cloudflare dashboard."
  }
}

variable "comment" {
  description = "Comment stored with every record written by this module. Null leaves records without a comment."
  type        = string
  default     = "managed by mailinfra-iac"
}
