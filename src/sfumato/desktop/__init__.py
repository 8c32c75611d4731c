"""Sfumato Studio, the desktop canvas app (PySide6).

``model/`` is the app's observable state in plain Python (document, layers, frame, prompt, jobs):
it imports no Qt and is tested without pixels on screen. ``ui/`` holds the widgets, the undo
commands and the bridge from the jobs layer's events to Qt signals. A new feature is a panel or
an action in ``ui/`` over the same model.
"""
