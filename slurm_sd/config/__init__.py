"""The configuration: model, YAML parsing with key paths in errors, loading and overrides."""
