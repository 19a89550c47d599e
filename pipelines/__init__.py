"""Veille item pipelines, one job each: archive, extract, learn boilerplate, dedup, store, index, alert."""
