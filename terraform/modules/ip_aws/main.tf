locals {
  allocated = { for id, ip in var.ips : id => ip if ip.address == null }
  existing  = { for id, ip in var.ips : id => ip if ip.address != null }
  associated = {
    for id, ip in var.ips : id => ip
    if contains(keys(var.instance_ids), ip.host) || contains(keys(var.network_interface_ids), ip.host)
  }
  ips_per_host = { for host in distinct([for ip in values(local.associated) : ip.host]) : host => length([for ip in values(local.associated) : ip if ip.host == host]) }
}

locals {
  pools = sort(distinct([for ip in values(var.ips) : ip.pool]))
}

# Carries the forward records into the graph, so that reverse DNS waits for them.
resource "terraform_data" "forward_records" {
  input = var.forward_records
}

resource "aws_eip" "this" {
  for_each = local.allocated

  domain = "vpc"
  tags = merge(var.tags, {
    Name             = "${var.name_prefix}${each.key}"
    "mailinfra:pool" = each.value.pool
  })
}

# Elastic IPs that already exist, found by their public address.
data "aws_eip" "existing" {
  for_each = local.existing

  public_ip = each.value.address
}

locals {
  allocation_ids = merge(
    { for id, eip in aws_eip.this : id => eip.allocation_id },
    { for id, eip in data.aws_eip.existing : id => eip.id },
  )
  addresses = merge(
    { for id, eip in aws_eip.this : id => eip.public_ip },
    { for id, eip in data.aws_eip.existing : id => eip.public_ip },
  )
}

resource "aws_eip_association" "this" {
  for_each = local.associated

  allocation_id        = local.allocation_ids[each.key]
  instance_id          = lookup(var.instance_ids, each.value.host, null)
  network_interface_id = lookup(var.network_interface_ids, each.value.host, null)
  private_ip_address   = lookup(var.private_ip_addresses, each.key, null)

  lifecycle {
    precondition {
      condition     = !(contains(keys(var.instance_ids), each.value.host) && contains(keys(var.network_interface_ids), each.value.host))
      error_message = "Host \"${each.value.host}\" is in both instance_ids and network_interface_ids; list it in one of them."
    }
    precondition {
      condition     = local.ips_per_host[each.value.host] == 1 || contains(keys(var.private_ip_addresses), each.key)
      error_message = "Host \"${each.value.host}\" has several associated IPs, so IP \"${each.key}\" needs an entry in private_ip_addresses."
    }
  }
}

# AWS sets reverse DNS only when the name already resolves to the Elastic IP, so the
# forward records are ordered before this.
resource "aws_eip_domain_name" "this" {
  for_each = var.ips

  allocation_id = local.allocation_ids[each.key]
  domain_name   = each.value.ptr

  depends_on = [terraform_data.forward_records]
}
