"""Services: load from the store, call the pure modules, persist, deliver."""
