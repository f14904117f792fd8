################################################################################
# Cloudflare has no record sets: one cloudflare_dns_record per value.
################################################################################

locals {
  # Resource keys are "<record id>/<first 10 hex digits of sha1(value)>", so adding or
  # removing one value of a record never renames the resources of the other values.
  record_values = merge([
    for id, record in var.records : {
      for value in record.values : "${id}/${substr(sha1(value), 0, 10)}" => {
        record_id = id
        fqdn      = record.name == "@" ? var.zone : "${record.name}.${var.zone}"
        type      = record.type
        ttl       = record.ttl
        value     = value
        mx        = record.type == "MX" ? regex("^([0-9]+) (.+)$", value) : null
        caa       = record.type == "CAA" ? regex("^([0-9]+) ([A-Za-z0-9]+) \"(.*)\"$", value) : null
      }
    }
  ]...)
}

resource "cloudflare_dns_record" "this" {
  for_each = local.record_values

  zone_id = var.zone_id
  # Full names avoid a perpetual diff: the API returns names fully qualified.
  name    = each.value.fqdn
  type    = each.value.type
  ttl     = each.value.ttl
  comment = var.comment

  # Mail records must never be proxied; only these types accept the setting.
  proxied = contains(["A", "AAAA", "CNAME"], each.value.type) ? false : null

  priority = each.value.type == "MX" ? tonumber(each.value.mx[0]) : null

  # Cloudflare stores host names without the trailing dot. TXT values arrive pre-chunked.
  content = (
    each.value.type == "CAA" ? null :
    each.value.type == "MX" ? trimsuffix(each.value.mx[1], ".") :
    contains(["CNAME", "PTR"], each.value.type) ? trimsuffix(each.value.value, ".") :
    each.value.value
  )

  data = each.value.type == "CAA" ? {
    flags = tonumber(each.value.caa[0])
    tag   = each.value.caa[1]
    value = each.value.caa[2]
  } : null
}
