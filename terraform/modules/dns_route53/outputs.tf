output "fqdns" {
  description = "Fully qualified name (without trailing dot) of each record written, keyed by the record id from `records`. Referencing it makes the caller wait until the records exist."
  value       = { for id, record in aws_route53_record.this : id => trimsuffix(record.fqdn, ".") }
}
