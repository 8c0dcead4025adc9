"""The HTTP edge of the identity service: one module per group of Keystone v3 resources."""
