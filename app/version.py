"""The product's version: written into every archive's manifest (app/services/archive.py)
and shown on the system screens. Raised with each issue that lands."""
__version__ = "1.15.0"
