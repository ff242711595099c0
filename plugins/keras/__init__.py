"""Keras plugin (placeholder until the plugin lands)."""
