"""Postfix on the host: the check of a staged configuration the postfix role runs before it installs it."""
