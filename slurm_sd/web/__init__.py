"""The serve step: HTTP resources, authentication, self-metrics and the site."""
