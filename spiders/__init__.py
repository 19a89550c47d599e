"""Veille spiders: one config-driven spider for every outlet."""
