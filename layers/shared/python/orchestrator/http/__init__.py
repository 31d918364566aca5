"""HTTP mapping: Problem+JSON, auth, cursors, request parsing."""
