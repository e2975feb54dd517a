"""crmlist: campaign lists and one-to-one letters from customer files, on one machine."""

__version__ = "0.1.0"
