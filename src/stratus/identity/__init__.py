"""Identity: the Keystone v3 API."""
