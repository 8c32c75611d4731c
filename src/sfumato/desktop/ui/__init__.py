"""The studio's widgets, actions and undo commands (PySide6)."""
