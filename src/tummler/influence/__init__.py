"""Who moves whom: influence over the social graph. Pure."""
