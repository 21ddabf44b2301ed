"""Serializers by seed: one module each (functions = 000, automations = 001, jobs = 002,
workflows = 003, runs = 004, failures = Redrive's own), and common for what they share. Each
module holds its outputs (which are also the OpenAPI schema) and its inputs (validated with
is_valid())."""
