################################################################################
# Route 53 keeps record sets: one aws_route53_record per record.
################################################################################

resource "aws_route53_record" "this" {
  for_each = var.records

  zone_id         = var.zone_id
  name            = each.value.name == "@" ? var.zone : "${each.value.name}.${var.zone}"
  type            = each.value.type
  ttl             = each.value.ttl
  allow_overwrite = var.allow_overwrite

  # MX and CAA values are in presentation format already; TXT values arrive with their
  # 255-character chunks joined by \"\" as Route 53 expects.
  records = each.value.values
}
