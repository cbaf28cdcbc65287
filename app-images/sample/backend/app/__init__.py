"""TimeTracker sample backend (stand-in for the real app when no app source is configured)."""
