"""Data access: the only code that knows the table's key schema and GSIs."""
