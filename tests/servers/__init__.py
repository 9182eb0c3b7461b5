"""Real servers the tests start and stop: OpenSSH sshd, fakenos devices, a silent listener and
network namespaces for a bastion. Loopback and test-made namespaces only."""
