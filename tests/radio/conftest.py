"""Radio tests rely on tests/conftest.py's autouse ``no_leftovers``: nothing may outlive a test."""
