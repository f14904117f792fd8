locals {
  allocated = { for id, ip in var.ips : id => ip if ip.address == null }
}

locals {
  pools = sort(distinct([for ip in values(var.ips) : ip.pool]))
}

# Carries the forward records into the graph, so that reverse DNS waits for them.
resource "terraform_data" "forward_records" {
  input = var.forward_records
}

resource "vultr_reserved_ip" "this" {
  for_each = local.allocated

  region      = var.region
  ip_type     = "v4"
  label       = "${var.label_prefix}${each.key}"
  instance_id = lookup(var.instance_ids, each.value.host, null)

  lifecycle {
    precondition {
      condition     = contains(keys(var.instance_ids), each.value.host)
      error_message = "IP \"${each.key}\" is on host \"${each.value.host}\", which has no entry in instance_ids."
    }
  }
}

locals {
  # A reserved IPv4's subnet is the single address (subnet_size 32).
  addresses = merge(
    { for id, ip in var.ips : id => ip.address if ip.address != null },
    { for id, ip in vultr_reserved_ip.this : id => ip.subnet },
  )
}

resource "vultr_reverse_ipv4" "this" {
  for_each = var.ips

  instance_id = lookup(var.instance_ids, each.value.host, null)
  ip          = local.addresses[each.key]
  reverse     = each.value.ptr

  depends_on = [terraform_data.forward_records]

  lifecycle {
    precondition {
      condition     = contains(keys(var.instance_ids), each.value.host)
      error_message = "IP \"${each.key}\" is on host \"${each.value.host}\", which has no entry in instance_ids."
    }
  }
}
