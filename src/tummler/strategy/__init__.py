"""The brand's written strategy: objectives, audiences, channels, campaigns, and their checks. Pure."""
