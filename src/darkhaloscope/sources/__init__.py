"""Lensed sources: the COSMOS source bank (build and read), source choice and colours."""
