"""The studio's state in plain Python: no Qt here."""
