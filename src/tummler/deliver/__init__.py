"""The outside world: channel connectors that hand messages over."""
