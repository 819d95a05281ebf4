"""The Kubernetes audit webhook: an HTTPS endpoint for the API server's audit webhook backend."""
