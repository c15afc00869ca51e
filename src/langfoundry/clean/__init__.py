"""Normalised, filtered, deduplicated text: filters, personal-data scrubbing, language checks, dedup."""
