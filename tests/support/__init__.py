"""Test support code shared by several test packages (contract validators, fakes)."""
