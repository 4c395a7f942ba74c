"""Sans-I/O WebSocket protocol core: bytes in, events and bytes out."""
