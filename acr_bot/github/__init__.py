"""GitHub: events (payload -> action), flows (one handler per event), the API client, CI logs, the Action's console."""
