"""The package version (one place; read by the artifact manifest and the CLI)."""
__version__ = "0.1.0"
