locals {
  pools = sort(distinct([for ip in values(var.ips) : ip.pool]))
}

# Carries the forward records into the graph, so that reverse DNS waits for them.
resource "terraform_data" "forward_records" {
  input = var.forward_records
}

locals {
  addresses    = { for id, ip in var.ips : id => ip.address }
  block_prefix = split("/", var.ip_block)[1]
}

resource "ovh_ip_reverse" "this" {
  for_each = var.ips

  ip                         = var.ip_block
  ip_reverse                 = each.value.address
  reverse                    = each.value.ptr
  readiness_timeout_duration = var.readiness_timeout

  depends_on = [terraform_data.forward_records]

  lifecycle {
    precondition {
      condition     = each.value.address != null
      error_message = "IP \"${each.key}\" has no address; ip_ovh cannot allocate addresses, give one from ${var.ip_block}."
    }
    precondition {
      condition     = can(cidrhost("${coalesce(each.value.address, "0.0.0.0")}/${local.block_prefix}", 0)) && try(cidrhost("${each.value.address}/${local.block_prefix}", 0) == cidrhost(var.ip_block, 0), false)
      error_message = "IP \"${each.key}\" (${coalesce(each.value.address, "no address")}) is not inside ip_block ${var.ip_block}."
    }
  }
}
