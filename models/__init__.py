"""Bundled model files (installed as the package ``forensics_scan.models``)."""
