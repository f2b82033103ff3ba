"""Shared platform code for every ContactPoint service: settings, logging, errors, auth, database
and the gRPC server factory. Written once, imported by each service."""
