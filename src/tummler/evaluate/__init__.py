"""Off-policy evaluation: estimate a policy's value from logged decisions. Pure."""
