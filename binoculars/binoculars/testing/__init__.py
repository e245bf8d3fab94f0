"""Helpers for tests and benchmarks, not for production: tiny random Qwen2 model pairs built offline
(`binoculars.testing.tiny`) and a scoring service run as a child process (`binoculars.testing.service_process`)."""
