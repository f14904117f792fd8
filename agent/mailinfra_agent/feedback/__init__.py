"""Bounce and complaint feedback on the host: classification of delivery outcomes (``classify``)."""
