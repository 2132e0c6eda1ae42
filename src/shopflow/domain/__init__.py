"""Pure types and rules. Imports nothing else from shopflow, no SQL, no HTTP."""
