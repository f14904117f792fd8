"""Built-in knowledge: ISP profiles, bounce handling, stream-kind defaults, DNSBL zones."""
