"""PyTorch plugin (placeholder until the plugin lands)."""
