"""HTTP handlers: parse once, call the services, render. No protocol logic of their own."""
