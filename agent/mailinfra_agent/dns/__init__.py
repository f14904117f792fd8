"""Asking name servers fast: the wire format (``wire``) and the engines and per-run client (``client``).

Shared by the controller's ``mailinfra dns check`` and host services; needs the ``dns`` extra (dnspython).
"""
