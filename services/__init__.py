"""The ContactPoint back-end services: identity, records and audit."""
