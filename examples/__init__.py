"""Example tasks for Conveyor's demo (``make run``)."""
