"""Policy loading, registration and protocol (see README 'Adding a policy')."""
