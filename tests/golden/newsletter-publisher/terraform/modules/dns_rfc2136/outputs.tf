locals {
  written = merge(
    { for id, r in dns_a_record_set.this : id => r.name },
    { for id, r in dns_aaaa_record_set.this : id => r.name },
    { for id, r in dns_cname_record.this : id => r.name },
    { for id, r in dns_mx_record_set.this : id => r.name },
    { for id, r in dns_txt_record_set.this : id => r.name },
    { for id, r in dns_ptr_record.this : id => r.name },
  )
}

output "fqdns" {
  description = "Fully qualified name (without trailing dot) of each record written, keyed by the record id from `records`. Referencing it makes the caller wait until the records exist."
  value       = { for id, name in local.written : id => name == null ? var.zone : "${name}.${var.zone}" }
}
