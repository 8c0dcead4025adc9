"""The metadata definitions catalog (Glance ``/v2/metadefs``)."""
