import os

# Tests render the template's working tree; copier's notes about it are noise here.
os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
