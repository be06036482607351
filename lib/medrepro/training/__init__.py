"""Training mechanics: ``fit`` with resume and its callbacks."""
