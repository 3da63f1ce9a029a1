"""softphone: a scriptable SIP softphone."""

__version__ = "0.1.0"
