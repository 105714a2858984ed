"""darkhaloscope: realistic strong-lens training stamps for DESI Legacy Surveys DR10."""

from ._version import __version__, code_version

__all__ = ["__version__", "code_version"]
