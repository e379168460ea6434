"""Store tests: the contract both stores pass, and dialect-only checks."""
