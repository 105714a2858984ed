"""Stamp dataset: schema, stamp encoding, storage, shard writer and readers."""
