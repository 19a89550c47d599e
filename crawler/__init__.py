"""Veille: news-monitoring crawler for French media."""
