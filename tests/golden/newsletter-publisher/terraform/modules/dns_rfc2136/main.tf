################################################################################
# RFC 2136 dynamic updates through the hashicorp/dns provider: one resource per
# record set (CNAME and PTR are single-valued resources).
################################################################################

locals {
  zone_fqdn = "${var.zone}."

  # The record-set resources take no name for the apex.
  by_type = {
    for type in ["A", "AAAA", "CNAME", "MX", "TXT", "PTR"] : type => {
      for id, record in var.records : id => merge(record, {
        relative_name = record.name == "@" ? null : record.name
      }) if record.type == type
    }
  }
}

resource "dns_a_record_set" "this" {
  for_each = local.by_type["A"]

  zone      = local.zone_fqdn
  name      = each.value.relative_name
  addresses = each.value.values
  ttl       = each.value.ttl
}

resource "dns_aaaa_record_set" "this" {
  for_each = local.by_type["AAAA"]

  zone      = local.zone_fqdn
  name      = each.value.relative_name
  addresses = each.value.values
  ttl       = each.value.ttl
}

resource "dns_cname_record" "this" {
  for_each = local.by_type["CNAME"]

  zone  = local.zone_fqdn
  name  = each.value.name
  cname = "${trimsuffix(one(each.value.values), ".")}."
  ttl   = each.value.ttl
}

resource "dns_mx_record_set" "this" {
  for_each = local.by_type["MX"]

  zone = local.zone_fqdn
  name = each.value.relative_name
  ttl  = each.value.ttl

  dynamic "mx" {
    for_each = each.value.values

    content {
      preference = tonumber(regex("^([0-9]+) ", mx.value)[0])
      exchange   = "${trimsuffix(regex(" (.+)$", mx.value)[0], ".")}."
    }
  }
}

resource "dns_txt_record_set" "this" {
  for_each = local.by_type["TXT"]

  zone = local.zone_fqdn
  name = each.value.relative_name
  txt  = each.value.values
  ttl  = each.value.ttl
}

resource "dns_ptr_record" "this" {
  for_each = local.by_type["PTR"]

  zone = local.zone_fqdn
  name = each.value.relative_name
  ptr  = "${trimsuffix(one(each.value.values), ".")}."
  ttl  = each.value.ttl
}
