"""Node networking: pod sandboxes, IPAM, routes and service rules."""
