"""The operator CLI (never deployed): python -m ops --help."""
