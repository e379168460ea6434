"""Conveyor's tests: unit, store contract, and end-to-end."""
