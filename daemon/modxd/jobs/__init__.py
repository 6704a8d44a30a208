"""The supervisor: queue, device scheduler, worker processes and the event bus."""
