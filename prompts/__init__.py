"""The German templates and phase files as package data: read them with `importlib.resources.files("prompts")`."""
