"""Container runtime: a spec -> an isolated, limited process (see runtime/launch.py)."""
